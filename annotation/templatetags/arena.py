from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from annotation.rendering import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    # Safe to mark: render_markdown returns nh3-sanitized HTML only.
    return mark_safe(render_markdown(text))  # noqa: S308


@register.filter(name="index")
def index_filter(items: list[str], position: int) -> str:
    """The item at a position, or an empty string: a candidate may answer fewer turns."""
    try:
        return items[position]
    except (IndexError, TypeError, KeyError):
        return ""
