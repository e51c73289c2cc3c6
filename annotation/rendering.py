"""Render untrusted text (model outputs, prompts, guidelines) as sanitized HTML.

Raw HTML in the text is not HTML to us: it is shown as written (`List<int>`, `Dear <your
name>`, a `<script>` a model wrote), escaped, as a model's reader would expect. Markdown is
converted with its raw-HTML rules switched off, and the result is still cleaned by nh3
(Ammonia): only an allow-list of tags and attributes survives, so event handlers and
`javascript:` URLs never reach the browser as live code.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as etree

import markdown
import nh3
from markdown.extensions import Extension
from markdown.inlinepatterns import IMAGE_LINK_RE, ImageInlineProcessor, InlineProcessor
from markdown.util import AtomicString

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
    "span",
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
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "th": {"align"},
    "td": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}


class _ImageAsLink(ImageInlineProcessor):
    """An image in untrusted text is shown as a link saying what it is, `[image: alt]`: the
    page loads nothing from a model's URLs (a tracking pixel, a huge file), and the alt text,
    which nh3 dropped with the `<img>`, stays readable."""

    def handleMatch(self, m, data):
        element, start, end = super().handleMatch(m, data)
        if element is None:
            return element, start, end
        link = etree.Element("a", {"href": element.get("src", "")})
        if element.get("title"):
            link.set("title", element.get("title"))
        link.text = f"[image: {element.get('alt') or 'no description'}]"
        return link, start, end


# TeX math as models write it: $$…$$, \[…\], \(…\), and $…$ with no space inside either
# dollar and no digit right after the closing one (pandoc's rule: "$5 to $10" is not math).
MATH_RE = (
    r"(?s)(\$\$.+?\$\$"
    r"|\\\[.+?\\\]"
    r"|\\\(.+?\\\)"
    r"|\$(?=[^\s$])[^$\n]+?(?<=[^\s\\])\$(?!\d))"
)


class _MathAsWritten(InlineProcessor):
    r"""Math is shown exactly as written, delimiters included: Markdown would read its `\(`
    as an escaped parenthesis and its `a*b*c` as emphasis, changing what annotators judge.
    The page renders no TeX (no script is loaded for it); the text stays escaped."""

    def handleMatch(self, m, data):
        element = etree.Element("span", {"class": "math"})
        element.text = AtomicString(m.group(1))
        return element, m.start(0), m.end(0)


class _RawHtmlAsText(Extension):
    """Python-Markdown passes raw HTML through; without its block and inline HTML rules, a
    `<tag>` in the text is escaped like any other character. Math is kept as written."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.inlinePatterns.register(_ImageAsLink(IMAGE_LINK_RE, md), "image_link", 150)
        # After code spans (190), which keep their text, and before backslash escapes (180).
        md.inlinePatterns.register(_MathAsWritten(MATH_RE, md), "math", 185)


@functools.lru_cache(maxsize=2048)
def render_markdown(text: str) -> str:
    """Markdown to sanitized HTML. Pure, so cached: every annotator of a pair reads the same
    answers, and rendering is a large part of serving a page."""
    html = markdown.markdown(
        text or "",
        extensions=["fenced_code", "tables", "sane_lists", "nl2br", _RawHtmlAsText()],
        output_format="html",
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
