"""The board's safe formatting: paragraphs, line breaks and http(s) links only; everything else is text."""

import pytest

from chiiki.services.board import Segment, render


def kinds(paragraphs):
    return [[s.kind for s in p] for p in paragraphs]


def test_blank_lines_make_paragraphs_and_single_newlines_make_breaks():
    out = render("一行目\n二行目\n\n次の段落\r\n\r\n三つ目")
    assert kinds(out) == [["text", "br", "text"], ["text"], ["text"]]
    assert out[0][0].text == "一行目" and out[1][0].text == "次の段落"


def test_http_and_https_urls_become_links_and_trailing_punctuation_stays_text():
    out = render("詳しくは https://www.city.asahikawa.hokkaido.jp/kurashi/ をご覧ください。http://example.jp.")
    links = [s for s in out[0] if s.kind == "link"]
    assert [s.href for s in links] == ["https://www.city.asahikawa.hokkaido.jp/kurashi/", "http://example.jp"]
    assert out[0][-1] == Segment("text", ".")


def test_japanese_text_right_after_a_url_is_not_part_of_the_link():
    out = render("https://example.jp/eventです")
    assert out[0][0] == Segment("link", "https://example.jp/event", "https://example.jp/event")
    assert out[0][1] == Segment("text", "です")


def test_parenthesised_url_keeps_balanced_brackets():
    out = render("(https://example.jp/a_(b))")
    link = next(s for s in out[0] if s.kind == "link")
    assert link.href == "https://example.jp/a_(b)"


@pytest.mark.parametrize("body", [
    "javascript:alert(1)",
    "<a href=\"javascript:alert(1)\">click</a>",
    "[click](javascript:alert(1))",
    "JaVaScRiPt:alert(document.cookie)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "http://",
    "https:///nohost",
])
def test_nothing_but_http_urls_with_a_host_becomes_a_link(body):
    out = render(body)
    assert all(s.kind != "link" for p in out for s in p)
    assert "".join(s.text for p in out for s in p) == body


@pytest.mark.parametrize("body", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    "&lt;b&gt; & <b>太字</b>",
])
def test_html_is_kept_as_literal_text(body):
    out = render(body)
    text = "".join(s.text for p in out for s in p if s.kind == "text")
    # Every character survives as text, to be shown literally; nothing was turned into markup.
    assert "".join(s.text for p in out for s in p) == body
    assert "<" in text


def test_link_with_markup_characters_stops_before_them():
    out = render('https://example.jp/"><script>alert(1)</script>')
    link = next(s for s in out[0] if s.kind == "link")
    assert link.href == "https://example.jp/"
    assert '"' not in link.href and "<" not in link.href


def test_empty_body_renders_nothing():
    assert render("") == () and render("  \n\n ") == ()


def test_the_board_finds_urls_as_circulars_do():
    """One URL pattern and one trimming rule for the board and the circulars (chiiki.services.markup)."""
    from chiiki.services import markup

    for body in ("詳しくはhttps://city.example.jp/kosodateをご覧ください。", "(https://example.jp/a_(b)).",
                 "HTTPS://Example.jp/x?q=1&r=2!"):
        board_links = [s.href for p in render(body) for s in p if s.kind == "link"]
        circular_links = [s.href for b in markup.parse(body) for ln in b.lines for s in ln.segs if s.kind == "a"]
        assert board_links == circular_links and len(board_links) == 1
