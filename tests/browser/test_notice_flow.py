"""A city notice in a real browser: city staff write one for 旭町 with a PDF, see its reach, publish;
a 旭町 resident reads it and downloads the PDF; a 末広東 resident never sees it, by feed or by file URL."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from chiiki.services import notices
from tests.browser.conftest import new_page, wait_loaded

PASSWORD = "chiiki-demo-2026"
AREA_LABEL = "旭川市 / 中央地区 / 旭町"  # member@example.jp lives in 旭町 (chiiki/seed.py), other@ in 末広東
FILES_LABEL = "添付ファイル(PDF・画像、1つ10MBまで、5つまで)"
FILE_NAME = "断水のお知らせ.pdf"
BODY = "3月10日 9時から12時まで、旭町の一部で断水します。\n- 給水車: 旭町公園"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _goto(page, url: str) -> None:
    page.goto(url, wait_until="load")
    page.wait_for_function("() => document.body.innerText.trim().length > 0", timeout=30_000)


def _login(page, base: str, login: str, lands_on: str) -> None:
    _goto(page, base + "/login")
    expect(page.locator("#f-login_id")).to_be_visible(timeout=30_000)
    page.fill("#f-login_id", login)
    page.fill("#f-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(lands_on + "/?$"), timeout=30_000)


def _shot(screenshot, page, name: str) -> None:
    """A full-page screenshot from the top, so the sticky header is not drawn over the middle of the page."""
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, name)


def _residents_in(db_url: str, area_name: str) -> int:
    """What the reach count must say: accounts (not deleted) whose area is this block (a leaf of the tree)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*) FROM account WHERE deleted_at IS NULL "
                "AND area_id = (SELECT id FROM area WHERE name = :name)"), {"name": area_name}).scalar_one()
    finally:
        engine.dispose()


def test_area_notice_with_pdf_reaches_its_area_only(live_app, browser, page, screenshot):
    base = live_app.url
    title = f"旭町の断水について({uuid.uuid4().hex[:6]})"
    expected_reach = _residents_in(live_app.db_url, "旭町")
    assert expected_reach >= notices.SMALL_GROUP

    # ---- city staff: write, attach a PDF through the drop zone, see the reach, publish
    _login(page, base, "city@example.jp", "/city")
    _goto(page, base + "/notices/admin")
    expect(page.locator("#f-title")).to_be_visible(timeout=30_000)
    file_input = page.locator("#notice-files input[type=file]")
    # assets/a11y.js names react-dropzone's hidden input by the visible label (data-label-id).
    expect(file_input).to_have_attribute("aria-labelledby", "notice-files-label", timeout=30_000)
    expect(file_input).to_have_accessible_name(FILES_LABEL)
    page.fill("#f-title", title)
    page.fill("#f-body", BODY)
    area_box = page.get_by_label(AREA_LABEL, exact=True)
    expect(area_box).to_be_visible(timeout=30_000)
    area_box.check()
    file_input.set_input_files(files=[{"name": FILE_NAME, "mimeType": "application/pdf", "buffer": PDF}])
    expect(page.locator(".notice-draft-file")).to_contain_text(FILE_NAME, timeout=30_000)
    assert page.locator("#notice-file-error").count() == 0
    page.click("#notice-preview")
    reach = page.locator("#notice-reach")
    shown = notices.shown_count(expected_reach)  # staff see counts rounded to five
    expect(reach).to_have_text(f"約 {shown} 人の住民に届きます", timeout=30_000)
    _shot(screenshot, page, "notice-reach-phone")
    page.click("#notice-publish")
    expect(page.get_by_role("status").filter(has_text="公開しました")).to_contain_text(
        f"約 {shown} 人に届きます", timeout=30_000)
    row = page.locator(".rt-Card", has=page.get_by_role("heading", name=title, exact=True))
    expect(row).to_contain_text(AREA_LABEL, timeout=30_000)
    staff_link = row.locator(".notice-attachment")
    expect(staff_link).to_contain_text(FILE_NAME)
    href = staff_link.get_attribute("href")
    assert re.fullmatch(re.escape(base) + r"/files/notice/\d+", href), href
    # The draft was linked on publishing: the editor is empty again.
    assert page.locator(".notice-draft-file").count() == 0
    _shot(screenshot, page, "notice-published-phone")

    # ---- a resident of 旭町: the notice is in the feed, unread, with its PDF
    resident_ctx, resident = new_page(browser)
    try:
        _login(resident, base, "member@example.jp", "/circulars")
        _goto(resident, base + "/notices")
        item = resident.locator("#notice-feed .rt-Card", has=resident.get_by_role("heading", name=title, exact=True))
        expect(item).to_be_visible(timeout=30_000)
        expect(item).to_contain_text("未読")
        expect(item).to_contain_text("添付あり")
        item.get_by_role("button", name="読む").click()
        expect(item).to_contain_text("給水車: 旭町公園", timeout=30_000)
        link = item.locator(".notice-attachment")
        expect(link).to_contain_text(FILE_NAME, timeout=30_000)
        expect(link).to_have_attribute("href", href)
        expect(link).to_have_accessible_name(f"{FILE_NAME}(新しいタブで開きます)")
        got = resident.request.get(href)
        assert got.status == 200, got.status
        assert got.body() == PDF
        assert got.headers["content-type"].startswith("application/pdf")
        assert got.headers["x-content-type-options"] == "nosniff"
        assert "no-store" in got.headers["cache-control"]
        _shot(screenshot, resident, "notice-feed-phone")
    finally:
        resident_ctx.close()

    # ---- a resident of 末広東: not in the feed, never sent to the browser, the file URL is 404
    other_ctx, other = new_page(browser)
    try:
        _login(other, base, "other@example.jp", "/circulars")
        _goto(other, base + "/notices")
        # Loaded: the notice meant for everyone is listed (the empty message is also what the page shows
        # before it has loaded).
        wait_loaded(other)
        expect(other.locator("#notice-feed")).to_be_visible(timeout=30_000)
        assert title not in other.inner_text("body")
        assert not any(title in f or FILE_NAME in f for f in other.ws_frames)
        got = other.request.get(href)
        assert got.status == 404, got.status
        assert got.body() != PDF
        _shot(screenshot, other, "notice-feed-other-area-phone")
    finally:
        other_ctx.close()

    # ---- no session at all: the same 404
    anon_ctx = browser.new_context()
    try:
        assert anon_ctx.request.get(href).status == 404
    finally:
        anon_ctx.close()
