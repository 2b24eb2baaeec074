"""A local, fictional multi-outlet Spanish-language news site for crawler tests and demos.

One stdlib HTTP server on 127.0.0.1 serves several outlets by virtual host
(``http://elfaro.localhost:PORT/`` …). See ``server.py`` for the API and ``ATTRIBUTION.md`` for
where the texts come from.
"""

from crawler.demo_site.factchecker import expected_factchecks
from crawler.demo_site.outlets import OUTLETS, Outlet
from crawler.demo_site.server import (
    FAULT_OUTLET,
    FAULTS,
    DemoSite,
    demo_registry,
    expected_articles,
    load_articles,
    main,
    write_registry,
)

__all__ = [
    "FAULTS",
    "FAULT_OUTLET",
    "OUTLETS",
    "DemoSite",
    "Outlet",
    "demo_registry",
    "expected_articles",
    "expected_factchecks",
    "load_articles",
    "main",
    "write_registry",
]
