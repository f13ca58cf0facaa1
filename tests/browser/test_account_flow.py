"""The first visit in a real browser: register (3 screens) -> my page -> log out -> log in -> my page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import wait_loaded, wait_new_page_loaded


def _goto(page, url):
    page.goto(url, wait_until="load")
    page.wait_for_function("() => document.body.innerText.trim().length > 0", timeout=30_000)


def test_register_login_mypage_logout(live_app, page, screenshot):
    _goto(page, live_app.url + "/register")
    expect(page.locator("#f-name")).to_be_visible(timeout=30_000)
    wait_loaded(page)
    screenshot(page, "register-step1-phone")
    page.fill("#f-name", "旭川 花子")
    page.fill("#f-kana", "あさひかわ はなこ")
    page.fill("#f-address", "旭川市旭町1条2丁目3-4")
    page.click("#register-next-1")
    expect(page.locator("#f-birth_year")).to_be_visible()
    page.fill("#f-birth_year", "1950")
    page.select_option("#f-area_id", index=1)
    page.click("#register-next-2")
    expect(page.locator("#f-login_id")).to_be_visible()
    page.fill("#f-login_id", "hanako.browser@example.jp")
    page.fill("#f-password", "sakura-haru-1950")
    page.fill("#f-password_confirm", "sakura-haru-1950")
    page.click("#register-submit")

    # A new account's next step is joining an association.
    page.wait_for_url(re.compile(r"/join/?$"), timeout=30_000)
    _goto(page, live_app.url + "/mypage")
    expect(page.locator("#profile-view")).to_contain_text("旭川 花子", timeout=30_000)
    expect(page.locator("#profile-view")).to_contain_text("hanako.browser@example.jp")
    screenshot(page, "mypage-phone")
    # The password never travels back to the browser.
    assert not any("sakura-haru-1950" in f for f in page.ws_frames)

    # Log out from the menu (on a phone it sits behind the menu button).
    page.click("#menu-toggle")
    page.locator("#main-nav-phone #logout-button").click()
    page.wait_for_url(re.compile(r"/login/?$"), timeout=30_000)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert not cookies.get("chiiki_session")
    # My page now sends you to the login page.
    _goto(page, live_app.url + "/mypage")
    page.wait_for_url(re.compile(r"/login/?$"), timeout=30_000)
    wait_loaded(page)

    # A wrong password gets the one message for every failure.
    page.fill("#f-login_id", "hanako.browser@example.jp")
    page.fill("#f-password", "wrong-password")
    page.click("#login-submit")
    expect(page.get_by_role("alert")).to_contain_text("ログインIDまたはパスワードが違います", timeout=30_000)

    page.fill("#f-password", "sakura-haru-1950")
    page.click("#login-submit")
    # Back on the page that asked for the login.
    page.wait_for_url(re.compile(r"/mypage/?$"), timeout=30_000)
    expect(page.locator("#profile-view")).to_contain_text("旭川 花子", timeout=30_000)


def test_register_shows_errors_next_to_fields_in_english(live_app, page):
    _goto(page, live_app.url + "/register")
    wait_loaded(page)
    page.click("#lang-toggle")
    expect(page.locator("#register-next-1")).to_have_text("Next", timeout=30_000)
    # The choice outlives the page: a new tab starts in English too.
    # It starts in English from the first paint: the prerendered Japanese page is never shown.
    other = page.context.new_page()
    other.add_init_script(SAW_JAPANESE)
    other.goto(live_app.url + "/login")
    expect(other.locator("#login-submit")).to_have_text("Log in", timeout=30_000)
    assert other.evaluate("() => document.documentElement.lang") == "en"
    assert other.evaluate("() => window.__sawJapanese") is False
    other.close()
    page.click("#register-next-1")
    page.click("#register-next-2")
    page.click("#register-submit")
    # The server sends the form back to the first screen with the error next to the empty name.
    expect(page.locator("#f-name-error")).to_have_text("Please fill this in", timeout=30_000)
    assert page.locator("#f-name").get_attribute("aria-invalid") == "true"
    # Back to Japanese: shown at once, and so is the next page.
    page.click("#lang-toggle")
    expect(page.locator("#register-next-1")).to_have_text("次へ", timeout=30_000)
    expect(page.locator("html")).to_have_attribute("lang", "ja", timeout=30_000)
    # The message the server wrote next to the field follows the switch too.
    expect(page.locator("#f-name-error")).to_have_text("入力してください", timeout=30_000)
    _goto(page, live_app.url + "/login")
    expect(page.locator("#login-submit")).to_have_text("ログインする", timeout=30_000)
    expect(page.locator("#login-submit")).to_be_visible()


# Watches every frame of a page while it loads, noting whether the Japanese login button was ever visible.
SAW_JAPANESE = """
window.__sawJapanese = false;
(function watch(until) {
  const button = document.querySelector('#login-submit');
  if (button && button.textContent.trim() === 'ログインする' && button.checkVisibility({visibilityProperty: true})) {
    window.__sawJapanese = true;
  }
  if (performance.now() < until) requestAnimationFrame(() => watch(until));
})(performance.now() + 15000);
"""


def test_demo_login_lands_in_the_circular_inbox(live_app, page):
    _goto(page, live_app.url + "/login")
    page.fill("#f-login_id", "member@example.jp")
    page.fill("#f-password", "chiiki-demo-2026")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/circulars/?$"), timeout=30_000)
    # The inbox is a member's home: their circulars are right there.
    expect(page.locator("#inbox-list")).to_be_visible(timeout=30_000)
    # Switching the language switches the list the server wrote too (its dates), on the page, at once.
    first = page.locator(".inbox-item").first
    expect(first).to_contain_text("年", timeout=30_000)
    page.click("#lang-toggle")
    expect(first).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"), timeout=30_000)
    expect(first).not_to_contain_text("年")
    page.click("#lang-toggle")  # back: the account keeps the language, and other tests log in as this member
    expect(first).to_contain_text("年", timeout=30_000)
    session = [c for c in page.context.cookies() if c["name"] == "chiiki_session"]
    # The session cookie is HttpOnly: no script on the page (an injected one included) can read it.
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert "chiiki_session" not in page.evaluate("document.cookie")
    assert session[0]["value"] not in "".join(page.ws_frames)


def test_a_forgotten_password_is_set_again_through_the_mailed_link(live_app, page, screenshot):
    """Login page → パスワードを忘れた方 → the login id → the link from the mail → a new password → log in. (The 会計,
    whom no other browser test logs in as: the app is shared by the tests and this changes the password.)"""
    import sqlalchemy as sa

    _goto(page, live_app.url + "/login")
    wait_loaded(page)
    frames = len(page.ws_frames)
    page.click("#forgot-link")
    page.wait_for_url(re.compile(r"/password/forgot$"), timeout=30_000)
    wait_new_page_loaded(page, frames)
    expect(page.locator("#f-login_id")).to_be_visible(timeout=30_000)
    page.fill("#f-login_id", "kaikei@example.jp")
    page.click("#reset-ask-submit")
    expect(page.locator("#reset-asked")).to_be_visible(timeout=30_000)
    engine = sa.create_engine(live_app.db_url)
    try:
        with engine.connect() as c:
            body = c.execute(sa.text("SELECT body FROM outboxmail WHERE kind = 'reset' AND to_address = "
                                     "'kaikei@example.jp' ORDER BY id DESC")).scalar()
    finally:
        engine.dispose()
    link = re.search(r"/password/reset\?token=[\w-]+", body).group(0)
    _goto(page, live_app.url + link)
    expect(page.locator("#f-new_password")).to_be_visible(timeout=30_000)
    wait_loaded(page)
    page.fill("#f-new_password", "yuki-no-asahi-2027")
    page.fill("#f-password_confirm", "yuki-no-asahi-2027")
    screenshot(page, "password-reset")
    page.click("#reset-submit")
    page.wait_for_url(re.compile(r"/login$"), timeout=30_000)
    expect(page.get_by_role("status")).to_contain_text("パスワードを再設定しました", timeout=30_000)
    page.fill("#f-login_id", "kaikei@example.jp")
    page.fill("#f-password", "yuki-no-asahi-2027")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/circulars/?$"), timeout=30_000)
    # The link was for once.
    _goto(page, live_app.url + link)
    expect(page.locator("#reset-invalid")).to_be_visible(timeout=30_000)


def test_what_a_tap_brought_comes_into_sight_on_a_phone(live_app, page):
    """My page on a phone: the profile form is long; after 保存 the form closes and 「保存しました」 appears at the
    top of the page, far above the finger. The page brings it into sight (assets/a11y.js)."""
    _goto(page, live_app.url + "/login")
    page.fill("#f-login_id", "member2@example.jp")
    page.fill("#f-password", "chiiki-demo-2026")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/circulars/?$"), timeout=30_000)
    _goto(page, live_app.url + "/mypage")
    page.click("#edit-profile")
    save = page.locator("#save-profile")
    save.scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 300  # the button is far down the page
    save.click()
    saved = page.get_by_role("status").filter(has_text="保存しました")
    expect(saved).to_be_visible(timeout=30_000)
    expect(saved).to_be_in_viewport(timeout=5_000)
