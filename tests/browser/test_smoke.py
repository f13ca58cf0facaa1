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
