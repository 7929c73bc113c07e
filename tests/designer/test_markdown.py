"""designer.markdown: user Markdown renders, and nothing in it can run script."""

import pytest

from designer.markdown import render

# Each row: Markdown/HTML in, text that must NOT be in the output.
HOSTILE = [
    ("<script>window.__xss=1</script>hello", "<script"),
    ("<script>window.__xss=1</script>hello", "__xss"),
    ("<SCRIPT SRC=https://evil.example/x.js></SCRIPT>", "evil.example"),
    ("[click](javascript:alert(1))", "javascript:"),
    ("[click](JaVaScRiPt:alert(1))", "alert"),
    ('<a href="javascript:alert(1)">x</a>', "javascript:"),
    ("[data](data:text/html;base64,PHNjcmlwdD4=)", "data:"),
    ('<img src=x onerror="window.__xss=2">', "onerror"),
    ("![pic](javascript:alert(1))", "javascript:"),
    ('<a href="https://ok.example" onclick="steal()">x</a>', "onclick"),
    ('<div onmouseover="steal()">x</div>', "onmouseover"),
    ('<iframe src="https://evil.example"></iframe>', "<iframe"),
    ('<iframe src="https://evil.example"></iframe>', "evil.example"),
    ('<object data="x.swf"></object><embed src="x.swf">', "x.swf"),
    ("<svg onload=alert(1)><circle/></svg>", "onload"),
    ('<p style="background:url(javascript:alert(1))">x</p>', "style"),
    ('<form action="https://evil.example"><input name=a></form>', "<form"),
    ("<style>body{display:none}</style>", "display:none"),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "<meta"),
    ("<!-- <script>x</script> -->", "<!--"),
    ('<a href="vbscript:msgbox(1)">x</a>', "vbscript"),
    ("![x](/logout/)", "/logout/"),  # images load by themselves: no relative URLs
    ("![x](//evil.example/pixel.gif)", "evil.example"),
]


@pytest.mark.parametrize(("source", "forbidden"), HOSTILE)
def test_hostile_input_is_neutralised(source, forbidden):
    assert forbidden.lower() not in render(source).lower()


def test_script_content_is_dropped_not_shown_as_text():
    assert render("<script>window.__xss=1</script>hello").strip() == "<p>hello</p>"


def test_links_keep_safe_urls_and_get_rel():
    html = render("[docs](https://docs.example/x) and [mail](mailto:team@example.com) and [here](/catalog/)")
    assert 'href="https://docs.example/x"' in html
    assert 'href="mailto:team@example.com"' in html
    assert 'href="/catalog/"' in html
    assert html.count('rel="noopener noreferrer nofollow"') == 3


def test_user_supplied_rel_and_target_are_replaced():
    html = render('<a href="https://x.example" rel="opener" target="_blank">x</a>')
    assert 'rel="noopener noreferrer nofollow"' in html
    assert 'rel="opener"' not in html and "target" not in html


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("**bold** and *em*", "<strong>bold</strong> and <em>em</em>"),
        ("`code`", "<code>code</code>"),
        ("- a\n- b", "<li>a</li>"),
        ("# Title", "<h1>Title</h1>"),
        ("> quoted", "<blockquote>"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "<td>1</td>"),
        ('```json\n{"a": 1}\n```', '<code class="language-json">'),
        ("![diagram](https://img.example/d.png)", 'src="https://img.example/d.png"'),
        ("a < b & c", "a &lt; b &amp; c"),
    ],
)
def test_documentation_markdown_survives(source, expected):
    assert expected in render(source)


@pytest.mark.parametrize("empty", [None, "", "   \n  "])
def test_empty_renders_empty(empty):
    assert render(empty) == ""
