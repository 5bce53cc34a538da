"""Model output as inert HTML: markdown formatting stays, nothing executes, loads or links.

Raters read responses formatted (lists, code, emphasis, tables). A CommonMark parser
(markdown-it, the one `rich` already brings) turns the text into HTML with raw HTML escaped
and the image, link, autolink and link-reference rules switched off, so `![x](url)`,
`[a](b)`, `<http://...>` and `[1]: url` stay literal text: no request leaves the browser
and nothing is clickable. Parsing (not pattern-matching) means tricks with code spans,
fences or reference definitions cannot smuggle markup past it.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}) \
    .enable("table").disable(["image", "link", "autolink", "reference"])


def inert_html(text: str) -> str:
    """HTML of a model output that renders its formatting but cannot run, load or link anything."""
    return f'<div class="tb-response">{_PARSER.render(text)}</div>'
