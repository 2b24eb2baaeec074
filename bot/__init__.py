"""Bot posting story summaries to X, Mastodon and Bluesky (bot issue)."""
