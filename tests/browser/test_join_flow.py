"""Joining in a real browser: a resident asks to join an association, the 会長 sees the waiting request on the
menu, accepts it into a new household of a han, and the resident is then a member."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import new_page, wait_loaded

PASSWORD = "chiiki-demo-2026"


def _login(page, base: str, login: str, lands: str) -> None:
    page.goto(base + "/login", wait_until="load")
    expect(page.locator("#f-login_id")).to_be_visible(timeout=30_000)
    page.fill("#f-login_id", login)
    page.fill("#f-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(lands), timeout=30_000)
    wait_loaded(page)


def test_a_resident_asks_to_join_and_the_kaicho_accepts(live_app, browser, page, screenshot):
    base = live_app.url
    _login(page, base, "newcomer@example.jp", r"/join/?$")
    expect(page.locator('a[href="/board"]')).to_have_count(0)  # not a member yet
    page.fill("#f-query", "旭町一丁目")
    page.click("#join-search")
    page.get_by_role("button", name="この町内会に申し込む").first.click()
    expect(page.locator("#ask-form")).to_be_visible(timeout=30_000)
    page.check("#f-consent")
    page.fill("#f-message", "4月に越してきました。よろしくお願いします。")
    page.click("#join-ask")
    expect(page.locator("#pending-card")).to_be_visible(timeout=30_000)
    screenshot(page, "join-pending")

    ctx, officer = new_page(browser)
    try:
        _login(officer, base, "kaicho@example.jp", r"/circulars/?$")
        menu = officer.locator('a[href="/association/members"]').first
        expect(menu).to_contain_text(re.compile(r"\d"), timeout=30_000)  # the requests waiting, this one too
        waiting = int(re.sub(r"\D", "", menu.text_content()))
        officer.goto(base + "/association/members", wait_until="load")
        wait_loaded(officer)
        request = officer.locator("div", has_text="4月に越してきました").filter(
            has=officer.get_by_role("button", name="受け付ける/断る")).last
        request.get_by_role("button", name="受け付ける/断る").click()
        form = officer.locator("#decide-form")
        expect(form).to_be_visible(timeout=30_000)
        if not officer.locator("#f-address").input_value():
            officer.fill("#f-address", "旭川市旭町1条1丁目9-9")
        officer.select_option("#f-han_id", index=1)
        officer.click("#approve-submit")
        expect(officer.get_by_role("status").filter(has_text="会員として受け付けました")).to_be_visible(timeout=30_000)
        expect(menu).to_have_text(re.compile(rf"会員の受付{waiting - 1 or ''}\s*$"))
    finally:
        ctx.close()

    # The resident is a member now: the circular inbox opens for them (empty: circulars sent from now on).
    page.goto(base + "/circulars", wait_until="load")
    expect(page.get_by_role("heading", name="回覧板", level=1)).to_be_visible(timeout=30_000)
    wait_loaded(page)
    assert re.search(r"/circulars/?$", page.url)
    expect(page.locator('a[href="/board"]')).not_to_have_count(0)  # the members' menu (the board) is theirs now
