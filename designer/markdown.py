"""User-written Markdown (descriptions, changelogs) to HTML that is safe to embed.

Plain module, no Django. Markdown passes raw HTML straight through, so every
rendering goes through nh3 (the Rust ``ammonia`` sanitiser) afterwards: the
allowlist below is the whole attack surface, not a blocklist of bad things.
"""

from __future__ import annotations

import markdown as _markdown
import nh3

# Enough for documentation: headings, emphasis, lists, tables, code, quotes, links,
# images. No forms, no frames, no media, no SVG/MathML, no style attributes.
ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
        "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
        "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
    "code": {"class"},  # fenced code keeps its "language-x" class
}
# Anything else (javascript:, data:, vbscript:, file:) is dropped from href and src.
URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
# These go with everything inside them; other disallowed tags are unwrapped to text.
DROP_WITH_CONTENT: frozenset[str] = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math", "textarea", "select"}
)
_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]


def render(text: str | None) -> str:
    """Markdown -> sanitised HTML fragment (an empty string for empty input)."""
    if not text or not text.strip():
        return ""
    html = _markdown.markdown(text, extensions=_EXTENSIONS, output_format="html")
    return sanitize(html)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # Images load without a click, as the reader: only absolute web URLs, never a
    # relative one that would fire a GET at an EventHub endpoint.
    if tag == "img" and attribute == "src" and not value.lower().startswith(("https://", "http://")):
        return None
    return value


def sanitize(html: str) -> str:
    """Keep only the allowlisted tags, attributes and URL schemes; add rel to links."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
