"""What a tab is sent when its websocket (re)connects: Reflex's hydrate event sends the whole state before any
page load of ours runs, so what the tab's pages loaded under grants it no longer has is forgotten first."""

from __future__ import annotations

import json

import reflex as rx
from reflex_base.event import Event
from sqlmodel import select

from chiiki.models import OfficerRole
from chiiki.pages.roster import RosterState
from chiiki.services import accounts
from chiiki.services.db import session
from chiiki.state import AuthState, ForgetStaleGrants
from tests.conftest import login_state


async def _reconnect_snapshot(root) -> str:
    """The middleware as the app runs it for the hydrate event, then the snapshot that event sends."""
    from reflex_base.event.context import EventContext

    sent = []

    async def emit(_token, delta):
        sent.append(delta)

    async def enqueue(*_a, **_k):
        return None

    event = Event(name=f"{rx.State.get_full_name()}.hydrate_and_load")
    assert await ForgetStaleGrants().preprocess(None, root, event) is None
    token = EventContext.set(EventContext(token="tab", state_manager=None, enqueue_impl=enqueue,
                                          emit_delta_impl=emit))
    try:
        try:
            await rx.State.hydrate_and_load.fn(root)
        except Exception:  # noqa: BLE001 (only the on_load lookup after the snapshot needs a running app)
            pass
    finally:
        EventContext.reset(token)
    assert sent, "no snapshot emitted"
    return json.dumps(sent, ensure_ascii=False, default=str)


async def _roster_shown(app_state) -> tuple[str, str]:
    st = await app_state.get_state(RosterState)
    await RosterState.load.fn(st)
    app_state._clean()
    return st.rows[10]["names"], st.rows[10]["address"]


async def test_a_reload_after_the_session_ended_elsewhere_does_not_send_the_roster_again(demo, app_state):
    """A shared PC: the 会長's session ends elsewhere (a password change on their phone); whoever reloads the
    tab must not be sent the roster it still holds."""
    auth = await login_state(app_state, "kaicho@example.jp")
    name, address = await _roster_shown(app_state)
    accounts.logout(auth._session_token())
    snapshot = await _reconnect_snapshot(app_state)
    assert name not in snapshot and address not in snapshot


async def test_a_reload_after_view_members_was_taken_away_does_not_send_the_roster_again(demo, app_state):
    await login_state(app_state, "kaicho@example.jp")
    name, _address = await _roster_shown(app_state)
    with session() as s:
        for role in s.exec(select(OfficerRole).where(OfficerRole.membership_id.in_(
                [m.membership_id for m in demo.actor("kaicho@example.jp").memberships]))).all():
            role.permissions = "send_circulars"
            s.add(role)
    assert name not in await _reconnect_snapshot(app_state)


async def test_a_reload_with_the_same_grants_keeps_the_page(demo, app_state):
    await login_state(app_state, "kaicho@example.jp")
    name, _address = await _roster_shown(app_state)
    assert name in await _reconnect_snapshot(app_state)


def test_the_app_runs_the_middleware():
    from chiiki.chiiki import app

    assert any(isinstance(m, ForgetStaleGrants) for m in app._middlewares)
    assert AuthState._drop_stale


async def test_a_reload_after_the_session_ended_does_not_send_the_former_users_name_or_menu(demo, app_state):
    auth = await login_state(app_state, "kaicho@example.jp")
    await _roster_shown(app_state)
    name, association = auth.display_name, auth.association_name
    assert name and association and auth.can_view_members
    accounts.logout(auth._session_token())
    snapshot = await _reconnect_snapshot(app_state)
    assert name not in snapshot and association not in snapshot
    assert not auth.can_view_members and not auth.logged_in
