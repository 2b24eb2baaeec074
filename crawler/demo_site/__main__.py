"""``python -m crawler.demo_site``: serve the demo news site until Ctrl-C."""

from crawler.demo_site.server import main

raise SystemExit(main())
