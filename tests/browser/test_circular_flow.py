"""A circular in a real browser: 班長 sends to 1班 with a PDF -> a 1班 member confirms -> the status shows it;
another han and another association never see it, by list, by id or by its attachment URL."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import new_page, wait_loaded

PASSWORD = "chiiki-demo-2026"
TITLE = "ごみ当番の変更(ブラウザ試験)"
BODY = ("今週は**2番**の家が当番です。\n<img src=x onerror=\"window.__xss=1\"> <script>window.__xss=2</script>\n"
        "[危ない](javascript:window.__xss=3)\n- 朝8時まで")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _goto(page, url):
    page.goto(url, wait_until="load")
    page.wait_for_function("() => document.body.innerText.trim().length > 0", timeout=30_000)


def _login(page, base, login):
    _goto(page, base + "/login")
    page.fill("#f-login_id", login)
    page.fill("#f-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/circulars/?$"), timeout=30_000)


def test_han_circular_reaches_its_members_only(live_app, browser, page, screenshot):
    base = live_app.url
    # ---- the 班長 composes, attaches a PDF, previews and sends to 1班
    _login(page, base, "hancho@example.jp")
    _goto(page, base + "/circulars/admin/new")
    expect(page.locator("#f-title")).to_be_visible(timeout=30_000)
    page.fill("#f-title", TITLE)
    page.fill("#f-body", BODY)
    page.locator("input[name^='han_']").first.check()
    page.set_input_files("#circular-files input[type=file]",
                         files=[{"name": "当番表.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    expect(page.locator(".attached-file")).to_contain_text("当番表.pdf", timeout=30_000)
    page.click("#preview-circular")
    expect(page.locator("#preview-title")).to_have_text(TITLE, timeout=30_000)
    expect(page.locator("#preview-reach")).to_be_visible()
    screenshot(page, "circular-preview-phone")
    page.click("#send-circular")
    page.wait_for_url(re.compile(r"/circulars/admin/status\?id=\d+"), timeout=30_000)
    cid = re.search(r"id=(\d+)", page.url).group(1)
    expect(page.locator("#status-title")).to_have_text(TITLE, timeout=30_000)
    expect(page.locator("#count-digital_confirmed")).to_have_text("0")

    # ---- a member of 1班 sees it unread, opens it, confirms
    member_ctx, member = new_page(browser)
    try:
        _login(member, base, "member@example.jp")
        _goto(member, base + "/circulars")
        item = member.locator(".inbox-item", has_text=TITLE)
        expect(item).to_be_visible(timeout=30_000)
        expect(item.locator(".unread-mark")).to_be_visible()
        item.click()
        member.wait_for_url(re.compile(r"/circulars/view\?id=" + cid), timeout=30_000)
        expect(member.locator("#circular-title")).to_have_text(TITLE, timeout=30_000)
        body = member.locator("#circular-body")
        expect(body).to_contain_text("<script>window.__xss=2</script>")
        assert body.locator("img, script").count() == 0
        assert body.locator("strong").first.inner_text() == "2番"
        assert all(not (a.get_attribute("href") or "").lower().startswith("javascript")
                   for a in member.locator("a").all())
        assert member.evaluate("() => window.__xss") is None
        href = member.locator(".circular-attachment").first.get_attribute("href")
        assert re.search(r"/files/circular/\d+$", href), href
        got = member.request.get(href)
        assert got.status == 200 and got.body() == PDF
        assert got.headers["x-content-type-options"] == "nosniff"
        screenshot(member, "circular-detail-phone")
        member.click("#confirm-button")
        expect(member.locator("#confirmed-state")).to_be_visible(timeout=30_000)
    finally:
        member_ctx.close()

    # ---- the 班長's status page now counts the confirmation
    page.reload(wait_until="load")
    expect(page.locator("#count-digital_confirmed")).to_have_text("1", timeout=30_000)
    screenshot(page, "circular-status-phone")

    # ---- another han and another association: nothing, by list, by id, by file URL
    for login in ("member2@example.jp", "other@example.jp"):
        ctx, other = new_page(browser)
        try:
            _login(other, base, login)
            _goto(other, base + "/circulars")
            wait_loaded(other)
            expect(other.locator("#inbox-list, #inbox-empty").first).to_be_visible(timeout=30_000)
            assert TITLE not in other.inner_text("body")
            _goto(other, base + f"/circulars/view?id={cid}")
            expect(other.get_by_role("alert")).to_be_visible(timeout=30_000)
            assert other.locator("#circular-title").count() == 0
            _goto(other, base + f"/circulars/admin/status?id={cid}")
            wait_loaded(other)
            expect(other.get_by_role("alert")).to_be_visible(timeout=30_000)
            assert other.locator("#status-title").count() == 0
            assert other.request.get(href).status == 404
            assert not any(TITLE in f for f in other.ws_frames)
        finally:
            ctx.close()
