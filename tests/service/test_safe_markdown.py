"""A lesson's instructions (app/safe_markdown.py): what a teacher writes never becomes markup or a
link of its own, whatever they type; the few Markdown constructs do."""

from __future__ import annotations

import pytest

from app.safe_markdown import render_markdown


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "javascript&#58;alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "/\\evil.example/x",
        "vbscript:msgbox(1)",
    ],
)
def test_a_link_elsewhere_than_http_or_this_site_is_left_as_text(link: str) -> None:
    rendered = render_markdown(f"see [this]({link})")
    assert "<a " not in rendered, rendered


def test_markup_in_the_text_is_shown_not_run() -> None:
    rendered = render_markdown('<img src=x onerror=alert(1)> **"bold"** [ok](/?kind=linear&lr=0.1) `<b>`')
    assert "<img" not in rendered and "&lt;img src=x onerror=alert(1)&gt;" in rendered
    assert "<strong>&quot;bold&quot;</strong>" in rendered
    assert '<a href="/?kind=linear&amp;lr=0.1">ok</a>' in rendered
    assert "<code>&lt;b&gt;</code>" in rendered


def test_a_quote_in_a_link_cannot_leave_the_attribute() -> None:
    rendered = render_markdown('[x](https://example.org/"onmouseover="alert(1))')
    assert 'onmouseover="' not in rendered
    assert "&quot;onmouseover=&quot;" in rendered


def test_the_constructs_a_lesson_needs() -> None:
    rendered = render_markdown("# Try\n\n- one\n- two\n\n1. first\n\n```\n<x>\n```\n\n*em* and _em_")
    assert rendered.splitlines() == [
        "<h2>Try</h2>",
        "<ul><li>one</li><li>two</li></ul>",
        "<ol><li>first</li></ol>",
        "<pre><code>&lt;x&gt;</code></pre>",
        "<p><em>em</em> and <em>em</em></p>",
    ]
