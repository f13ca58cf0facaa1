"""Privacy in the wire: a plain member's browser never receives another person's personal data, on any page
it can reach; an officer with view_members does receive it once the roster is open (so the check can fail)."""

from __future__ import annotations

import json
import re
from urllib.parse import urljoin, urlparse

from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import create_engine
from sqlmodel import Session, select

import chiiki.routes as routes
from chiiki.models import Account, Household, Membership

PASSWORD = "chiiki-demo-2026"
MAX_PAGES = 60
SETTLE_MS = 500  # no new websocket frame for this long = the page's events have finished
POLL_MS = 100


def personal_values(db_url: str, login: str) -> tuple[set[str], set[str]]:
    """(everyone else's name/kana/address/phone/email, the person's own values) from the live database."""
    eng = create_engine(db_url)
    try:
        with Session(eng) as s:
            me = s.exec(select(Account).where(Account.login_id == login)).one()
            own_households = set(s.exec(select(Membership.household_id).where(Membership.account_id == me.id)).all())
            own = {v for v in (me.name, me.kana, me.address, me.phone, me.email) if v}
            for h in s.exec(select(Household).where(Household.id.in_(own_households))).all():
                own |= {v for v in (h.address, h.head_name, h.head_kana, h.phone) if v}
            others: set[str] = set()
            for a in s.exec(select(Account).where(Account.id != me.id)).all():
                others |= {a.name, a.kana, a.address, a.phone, a.email}
            for h in s.exec(select(Household).where(Household.paper_only.is_(True),
                                                    Household.id.not_in(own_households or {0}))).all():
                others |= {h.head_name, h.head_kana, h.address, h.phone}
    finally:
        eng.dispose()
    # The same full name can belong to two people in the demo; what is one's own is not a leak.
    return {v for v in others if v and len(v) >= 4} - own, own


def frame_texts(frames: list[str]) -> list[str]:
    """Each frame as sent, plus its JSON decoded and re-encoded without \\u escapes."""
    out = []
    for f in frames:
        out.append(f)
        start = f.find("[")
        if start >= 0:
            try:
                out.append(json.dumps(json.loads(f[start:]), ensure_ascii=False))
            except ValueError:
                pass
    return out


def found_in(frames: list[str], values: set[str]) -> set[str]:
    texts = frame_texts(frames)
    return {v for v in values if any(v in t for t in texts)}


def settle(page) -> None:
    page.wait_for_function("() => document.body && document.body.innerText.trim().length > 0", timeout=30_000)
    seen, quiet = len(page.ws_frames), 0
    for _ in range(12_000 // POLL_MS):
        page.wait_for_timeout(POLL_MS)
        if len(page.ws_frames) == seen:
            quiet += POLL_MS
            if quiet >= SETTLE_MS:
                return
        else:
            seen, quiet = len(page.ws_frames), 0


def login(page, base: str, login_id: str) -> None:
    page.goto(base + "/login", wait_until="load")
    page.locator("#f-login_id").wait_for(timeout=30_000)
    page.fill("#f-login_id", login_id)
    page.fill("#f-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/(circulars|city|join)/?$"), timeout=30_000)
    settle(page)


def route_paths() -> list[str]:
    return [v for k, v in vars(routes).items() if k.isupper() and isinstance(v, str) and v.startswith("/")]


def links_on(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    out = []
    for href in hrefs:
        url = urlparse(urljoin(base + "/", href or ""))
        if url.scheme in ("http", "https") and f"{url.scheme}://{url.netloc}" == base and url.path:
            out.append(url.path + (f"?{url.query}" if url.query else ""))
    return out


def walk(page, base: str) -> list[str]:
    """Open the navigation's links, every route constant, and the links found on those pages (bounded)."""
    page.goto(base + "/mypage", wait_until="load")
    settle(page)
    nav = page.eval_on_selector_all("#main-nav a[href]", "els => els.map(e => e.getAttribute('href'))")
    queue = list(dict.fromkeys([*(h for h in nav if h and h.startswith("/")), *route_paths()]))
    visited: list[str] = []
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        if path in visited:
            continue
        visited.append(path)
        try:
            response = page.goto(base + path, wait_until="load")
        except PlaywrightError:
            continue  # a download (e.g. an attachment) rather than a page
        if response is None or response.status >= 400:
            continue  # a page that does not exist (yet) is not this test's business
        if "text/html" not in (response.headers.get("content-type") or ""):
            continue  # a file served over HTTP (attachments): no websocket, nothing of the app's state
        settle(page)
        for link in links_on(page, base):
            if link not in visited and link not in queue:
                queue.append(link)
    return visited


def test_a_members_browser_never_receives_other_peoples_personal_data(live_app, page):
    secrets, own = personal_values(live_app.db_url, "member@example.jp")
    assert len(secrets) > 100  # the demo city really is there
    login(page, live_app.url, "member@example.jp")
    visited = walk(page, live_app.url)
    assert routes.ROSTER in visited and routes.MYPAGE in visited
    # The recording works: the member's own name reached the browser on my page.
    assert found_in(page.ws_frames, own), "own data never seen: frames are not being recorded"
    leaked = found_in(page.ws_frames, secrets)
    assert not leaked, f"other people's data reached a member's browser: {sorted(leaked)[:10]} (pages: {visited})"


def test_an_officer_with_view_members_does_receive_it_on_the_roster(live_app, page, screenshot):
    secrets, _own = personal_values(live_app.db_url, "kaicho@example.jp")
    login(page, live_app.url, "kaicho@example.jp")
    before_roster = len(page.ws_frames)
    page.goto(live_app.url + routes.ROSTER, wait_until="load")
    settle(page)
    page.locator(".roster-row").first.wait_for(timeout=30_000)
    screenshot(page, "roster-president-phone", full_page=False)
    shown = found_in(page.ws_frames[before_roster:], secrets)
    # Names, kana and addresses of the first page of households (50 of them) arrive in the frames.
    assert len(shown) >= 50, sorted(shown)
    # A paper roster goes up through rx.upload and comes back only as the preview (nothing is saved).
    csv = "班,住所,氏名,ふりがな,電話\r\n1班,旭川市緑町5条1丁目1-1,紙野 一郎,かみの いちろう,0166112222\r\n"
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "paper.csv", "mimeType": "text/csv", "buffer": csv.encode("cp932")}])
    page.click("#roster-import-preview")
    page.locator("#roster-import-preview-table").get_by_text("紙野 一郎").wait_for(timeout=30_000)
    page.locator("#roster-import-preview-table").scroll_into_view_if_needed()
    screenshot(page, "roster-import-preview-phone", full_page=False)
    visited = walk(page, live_app.url)
    assert routes.ROSTER in visited
