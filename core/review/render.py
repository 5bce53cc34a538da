"""Model output as inert markdown: formatting stays, nothing executes or loads.

Raters read responses as markdown (lists, code, emphasis). Outside code, HTML is escaped so
it shows as text; images become a text note (no request leaves the browser); links show
their text and address but are not clickable; `$` is escaped so prices do not turn into
LaTeX. Code spans and fenced blocks are left as they are: markdown shows them literally.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"(^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*\2[ \t]*$|\Z))", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.S)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]*)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]*)[^)]*\)")


def _inert_prose(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _IMAGE.sub(lambda m: f"[image: {m.group(1) or 'no description'}]", text)
    text = _LINK.sub(lambda m: f"{m.group(1)} (`{m.group(2).replace('`', '')}`)", text)
    return text.replace("$", "\\$")


def _outside_code_spans(text: str) -> str:
    out, last = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_inert_prose(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_inert_prose(text[last:]))
    return "".join(out)


def inert_markdown(text: str) -> str:
    """Markdown that renders the same formatting but cannot run, load or link anything."""
    out, last = [], 0
    for m in _FENCE.finditer(text):
        out.append(_outside_code_spans(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_outside_code_spans(text[last:]))
    return "".join(out)
