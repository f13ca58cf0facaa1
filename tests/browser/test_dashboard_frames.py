"""City staff in a real browser: dashboard, notice editor and inquiry admin never carry a member's name or address."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.conftest import wait_loaded


def _goto(page, url):
    page.goto(url, wait_until="load")
    page.wait_for_function("() => document.body.innerText.trim().length > 0", timeout=30_000)


def _people(db_url: str) -> list[str]:
    """Every member's name and address in the app's database (and every household's)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as c:
            rows = c.execute(sa.text("SELECT name, address FROM account WHERE NOT is_city_staff "
                                     "UNION SELECT head_name, address FROM household")).all()
    finally:
        engine.dispose()
    return sorted({v for pair in rows for v in pair if v})


def test_city_pages_send_no_members_name_or_address(live_app, page, screenshot):
    people = _people(live_app.db_url)
    assert len(people) > 100

    # A visitor's inquiry first, so the admin page has a receipt to show.
    _goto(page, live_app.url + "/inquiry")
    expect(page.locator("#f-department_id")).to_be_visible(timeout=30_000)
    page.select_option("#f-department_id", index=1)
    page.fill("#f-sender_name", "来訪 花子")
    page.fill("#f-sender_contact", "visitor@example.jp")
    page.fill("#f-subject", "除雪について")
    page.fill("#f-body", "家の前の除雪をお願いします。")
    page.click("#inquiry-submit")
    expect(page.locator("#inquiry-receipt-reference")).to_have_text(re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$"),
                                                                    timeout=30_000)

    _goto(page, live_app.url + "/login")
    page.fill("#f-login_id", "city@example.jp")
    page.fill("#f-password", "chiiki-demo-2026")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/city/?$"), timeout=30_000)
    page.ws_frames.clear()

    _goto(page, live_app.url + "/city/dashboard")
    expect(page.locator("#fig-associations")).to_have_text("3", timeout=30_000)
    expect(page.locator("#dashboard-table")).to_contain_text("旭町一丁目町内会")
    page.locator("#dashboard-table button").first.click()
    expect(page.locator("#dashboard-chart")).to_contain_text("町内会", timeout=30_000)
    screenshot(page, "city-dashboard-phone")
    # Back to the whole city: its series again, kept from the page load.
    page.get_by_role("button", name="市全体を表示").click()
    expect(page.locator("#dashboard-chart")).to_contain_text("月ごとの推移(市全体)", timeout=30_000)
    expect(page.get_by_role("button", name="市全体を表示")).to_have_count(0)

    _goto(page, live_app.url + "/notices/admin")
    expect(page.locator("#f-title")).to_be_visible(timeout=30_000)
    wait_loaded(page)
    page.fill("#f-title", "ブラウザからのお知らせ")
    page.fill("#f-body", "本文です")
    page.check("#f-everyone")
    page.click("#notice-preview")
    expect(page.locator("#notice-reach")).to_contain_text(re.compile(r"\d+"), timeout=30_000)
    page.click("#notice-publish")
    expect(page.get_by_role("status").filter(has_text="公開しました")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("ブラウザからのお知らせ").first).to_be_visible(timeout=30_000)
    screenshot(page, "city-notice-admin-phone")

    _goto(page, live_app.url + "/city/inquiries")
    expect(page.locator("#undelivered")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("市民生活課").first).to_be_visible(timeout=30_000)
    screenshot(page, "city-inquiries-phone")

    # The audit trail: accesses per association, numbered pages (the log is never counted whole; the pager shows
    # once there is a second page).
    _goto(page, live_app.url + "/city/audit")
    wait_loaded(page)
    # Officers' accesses of earlier tests on the shared app, or none yet: either way the page says which.
    expect(page.locator("#audit-trail-empty").or_(page.get_by_text("名簿で閲覧").first)).to_be_visible()
    screenshot(page, "city-audit-trail-phone")

    frames = "\n".join(page.ws_frames)
    assert "ブラウザからのお知らせ" in frames  # the frames were recorded
    leaked = [p for p in people if p in frames]
    assert leaked == []
    # The visitor's inquiry reached the department (outbox) and left nothing readable for staff.
    assert "来訪 花子" not in frames and "家の前の除雪" not in frames
    assert page.page_errors == [], page.page_errors
