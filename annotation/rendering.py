"""Render untrusted text (model outputs, prompts, guidelines) as sanitized HTML.

Markdown is converted first and the result is cleaned by nh3 (Ammonia): only an allow-list
of tags and attributes survives, so `<script>`, event handlers and `javascript:` URLs in a
model's output never reach the browser as live code.
"""

from __future__ import annotations

import functools

import markdown
import nh3

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}


@functools.lru_cache(maxsize=2048)
def render_markdown(text: str) -> str:
    """Markdown to sanitized HTML. Pure, so cached: every annotator of a pair reads the same
    answers, and rendering is a large part of serving a page."""
    html = markdown.markdown(
        text or "",
        extensions=["fenced_code", "tables", "sane_lists", "nl2br"],
        output_format="html",
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
