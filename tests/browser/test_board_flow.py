"""The board in a real browser: a member posts (markup stays text), an officer hides it, members no longer see it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import new_page

BODY_MARK = "清掃当番の連絡です"
XSS = ('<script>window.__xss = 1</script>\n<img src=x onerror="window.__xss = 2">\n'
       'javascript:window.__xss=3\n\nhttps://example.jp/info')


def _login(page, base: str, login: str) -> None:
    page.goto(base + "/login", wait_until="load")
    expect(page.locator("#f-login_id")).to_be_visible(timeout=30_000)
    page.fill("#f-login_id", login)
    page.fill("#f-password", "chiiki-demo-2026")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/(circulars|city|join)/?$"), timeout=30_000)


def _open(page, url: str) -> None:
    page.goto(url, wait_until="load")
    expect(page.locator("#thread-title")).to_be_visible(timeout=30_000)


def test_member_post_is_safe_and_disappears_for_members_once_an_officer_hides_it(live_app, page, browser, screenshot):
    base = live_app.url
    _login(page, base, "member@example.jp")
    page.goto(base + "/board", wait_until="load")
    page.locator("#new-thread").click()
    page.fill("#f-title", "当番のお知らせ")
    page.fill("#f-thread-body", BODY_MARK + "\n" + XSS)
    page.click("#thread-submit")
    page.wait_for_url(re.compile(r"/board/\d+$"), timeout=30_000)
    thread_url = page.url
    post = page.locator(".board-post").first
    expect(post).to_contain_text(BODY_MARK, timeout=30_000)
    # Typed markup shows as text and never becomes elements, handlers or a javascript: link.
    expect(post).to_contain_text("<script>window.__xss = 1</script>")
    expect(post).to_contain_text('<img src=x onerror="window.__xss = 2">')
    assert post.locator("script, img, iframe").count() == 0
    hrefs = post.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs == ["https://example.jp/info"]
    assert page.evaluate("() => window.__xss === undefined")
    screenshot(page, "board-thread-phone")

    officer_ctx, officer = new_page(browser)
    member2_ctx, member2 = new_page(browser)
    try:
        _login(officer, base, "fukukaicho@example.jp")
        _open(officer, thread_url)
        officer.locator(".post-hide").first.click()
        officer.fill("#f-hide-reason", "外部リンクの確認中です")
        officer.click("#hide-submit")
        expect(officer.locator(".post-unhide").first).to_be_visible(timeout=30_000)

        _login(member2, base, "member2@example.jp")
        _open(member2, thread_url)
        first = member2.locator(".board-post").first
        expect(first.locator(".post-hidden")).to_be_visible(timeout=30_000)
        expect(first).to_contain_text("役員により非表示")
        expect(member2.locator("#post-list")).not_to_contain_text(BODY_MARK)
        # Not in the page, and never sent to this browser at all.
        assert not any(BODY_MARK in f for f in member2.ws_frames)
        assert not any("外部リンクの確認中です" in f for f in member2.ws_frames)
        screenshot(member2, "board-hidden-for-members-phone")

        # The author still sees the post, with the officer's reason.
        _open(page, thread_url)
        expect(page.locator(".post-hidden-reason").first).to_contain_text("外部リンクの確認中です", timeout=30_000)
    finally:
        officer_ctx.close()
        member2_ctx.close()
