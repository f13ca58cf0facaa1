"""Smoke test: the production build answers, renders and connects its websocket."""

from __future__ import annotations

import urllib.request


def test_app_loads_in_chromium(live_app, page, screenshot):
    with urllib.request.urlopen(live_app.url + "/ping", timeout=10) as resp:  # noqa: S310 (loopback)
        assert resp.status == 200

    response = page.goto(live_app.url + "/", wait_until="load")
    assert response is not None and response.status == 200

    # The state websocket connects and the backend sends at least one frame (the initial state).
    page.wait_for_function("() => document.title.trim().length > 0", timeout=30_000)
    title = page.title()
    deadline_ms = 30_000
    waited = 0
    while not page.ws_frames and waited < deadline_ms:
        page.wait_for_timeout(200)
        waited += 200
    assert page.ws_frames, "no websocket frame received from /_event"
    assert page.evaluate("() => document.body.innerText.trim().length") > 0

    print(f"title={title!r} frames={len(page.ws_frames)}")
    screenshot(page, "smoke-home")
    assert page.page_errors == [], page.page_errors
    # A missing favicon is not an app error (add assets/favicon.ico to silence it in the browser).
    errors = [e for e in page.console_errors if "/favicon.ico]" not in e]
    assert errors == [], errors


def test_form_buttons_wait_for_the_page_load(live_app, page):
    """The page as served (before its load has run) has its form buttons disabled; once loaded they work."""
    import re

    from playwright.sync_api import expect

    from tests.browser.conftest import wait_loaded

    with urllib.request.urlopen(live_app.url + "/login", timeout=10) as resp:  # noqa: S310 (loopback)
        html = resp.read().decode("utf-8")
    button = re.search(r'<button[^>]*id="login-submit"[^>]*>', html)
    assert button is not None and re.search(r"\bdisabled\b", button.group(0)), button
    assert 'data-loaded="false"' in html
    page.goto(live_app.url + "/login", wait_until="load")
    wait_loaded(page)
    expect(page.locator("#login-submit")).to_be_enabled(timeout=30_000)
