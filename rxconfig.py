"""Reflex configuration; every setting comes from the environment (see chiiki/settings.py)."""

import reflex as rx
from reflex.plugins import SitemapPlugin
from reflex_components_radix.plugin import RadixThemesPlugin

from chiiki.settings import settings

config = rx.Config(
    app_name="chiiki",
    db_url=settings.db_url,
    redis_url=settings.redis_url or None,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[RadixThemesPlugin(theme=rx.theme(appearance="light", accent_color="indigo", radius="medium"))],
    disable_plugins=[SitemapPlugin],
)
