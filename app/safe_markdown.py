"""A lesson's instructions, Markdown to HTML that is safe to put in a page. No torch here.

A small renderer rather than a library: a lesson needs paragraphs, headings, lists, code, emphasis
and links, and nothing a teacher writes may become markup of its own. So every character of the
text is HTML-escaped *first*, and only then are the few Markdown constructs below turned into tags
this module writes; raw HTML in the text shows as text (``<script>`` stays ``&lt;script&gt;``).
Links go only to ``http://``, ``https://`` or a path on this site (``/?kind=linear&lr=0.1``), never
``javascript:`` or ``data:``; any other link is left as the text it was written as.

    # Heading (#, ## or ###; h2 to h4 on the page, under the lesson's own h1)
    - item, * item, 1. item             lists
    ```                                 a code block (fenced)
    `code`, **strong**, *em* or _em_    inline
    [text](https://example.org)         a link (opens in a new tab, no referrer)
    a blank line                        a new paragraph
"""

from __future__ import annotations

import html
import re

_FENCE = re.compile(r"^\s*```")
_HEADING = re.compile(r"^(#{1,3})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d{1,9}[.)]\s+(.*)$")

# Inline, applied to escaped text: the escaped forms of < > & " ' cannot be matched as markup.
_CODE = re.compile(r"`([^`]+)`")
# The inline patterns never match their own delimiters inside (no nested brackets, emphasis in bold,
# or parentheses in a URL): then each start scans only to the next delimiter, and a line of
# 20,000 "[" or "**a " renders in linear time, not in seconds (the lesson's preview renders as the
# teacher types).
_LINK = re.compile(r"\[([^\[\]]+)\]\(([^()\s\[\]]+)\)")
_STRONG = re.compile(r"\*\*(?=\S)([^*]+?)(?<=\S)\*\*")
_EM = re.compile(r"(?<![\w*])[*_](?=\S)([^*_]+?)(?<=\S)[*_](?![\w*])")
# A path on this site starts with one "/" and has no backslash: browsers read "/\host" as "//host".
_SAFE_URL = re.compile(r"^(https?://[^\s]+|/(?![/\\])[^\s\\]*)$", re.IGNORECASE)


def render_markdown(text: str) -> str:
    """``text`` (Markdown) as HTML made only of the tags above, everything else escaped."""
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag: str | None = None
    code: list[str] | None = None

    def flush() -> None:
        nonlocal list_tag
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if list_tag is not None:
            out.append(f"<{list_tag}>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + f"</{list_tag}>")
            items.clear()
            list_tag = None

    for line in text.replace("\r\n", "\n").split("\n"):
        if code is not None:
            if _FENCE.match(line):
                out.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        if _FENCE.match(line):
            flush()
            code = []
        elif not line.strip():
            flush()
        elif heading := _HEADING.match(line):
            flush()
            level = len(heading.group(1)) + 1
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif (bullet := _BULLET.match(line)) or (numbered := _NUMBERED.match(line)):
            tag = "ul" if bullet else "ol"
            if paragraph or (list_tag is not None and list_tag != tag):
                flush()
            list_tag = tag
            items.append((bullet or numbered).group(1))  # type: ignore[union-attr]
        elif list_tag is not None and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()  # an item's continuation line
        else:
            if list_tag is not None:
                flush()
            paragraph.append(line.strip())
    if code is not None:  # an unclosed fence runs to the end
        out.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
    flush()
    return "\n".join(out)


def _inline(text: str) -> str:
    escaped = html.escape(text.replace("\x00", ""), quote=True)  # \x00 marks the code spans below
    # Code spans first, set aside so that nothing inside them becomes a link or emphasis.
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(spans) - 1}\x00"

    escaped = _CODE.sub(keep, escaped)
    escaped = _LINK.sub(_link, escaped)
    escaped = _STRONG.sub(r"<strong>\1</strong>", escaped)
    escaped = _EM.sub(r"<em>\1</em>", escaped)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], escaped)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if not _SAFE_URL.match(html.unescape(url)):
        return match.group(0)  # as written: a link to anything else is not made
    external = ' target="_blank" rel="noopener noreferrer"' if not url.startswith("/") else ""
    return f'<a href="{url}"{external}>{label}</a>'
