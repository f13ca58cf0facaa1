"""The roster page through an rx.State tree: what each handler puts in the state and what the browser gets."""

import io
import json
from pathlib import Path

import pytest
import reflex as rx
from sqlmodel import select

from chiiki.models import Account, AuditEvent, Household
from chiiki.pages.roster import RosterState
from chiiki.services import roster
from chiiki.services.db import session
from chiiki.state import UIState
from tests.conftest import DemoCity, login_state, state_text


async def roster_for(root, login: str) -> RosterState:
    await login_state(root, login)
    st = await root.get_state(RosterState)
    await RosterState.load.fn(st)
    return st


def upload_file(name: str, data: bytes) -> rx.UploadFile:
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name), size=len(data))


def n_audit(action: str) -> int:
    with session() as s:
        return len(s.exec(select(AuditEvent.id).where(AuditEvent.action == action)).all())


def other_names(a1: int, han_id: int | None = None, field: str = "head_name") -> list[str]:
    with session() as s:
        q = select(Household).where(Household.association_id == a1, Household.paper_only.is_(True))
        if han_id:
            q = q.where(Household.han_id == han_id)
        return [getattr(h, field) for h in s.exec(q).all()]


async def test_president_gets_the_first_page_with_total_and_flags(app_state, demo):
    st = await roster_for(app_state, "kaicho@example.jp")
    assert st.allowed and st.error == ""
    assert (len(st.rows), st.total, st.page, st.pages) == (50, 80, 1, 2)
    assert st.can_manage and st.can_export
    assert [o[1] for o in st.han_options] == ["1班", "2班", "3班", "4班"]
    first = st.rows[0]
    assert set(first) == {"id", "han", "position", "address", "names", "kana", "channel", "phones", "emails"}
    assert (first["han"], first["position"]) == ("1班", "1")
    delta = json.dumps(app_state.get_delta(), ensure_ascii=False, default=str)
    assert len(delta.encode()) < 100_000
    assert n_audit("roster.view") > 0


async def test_pages_and_search_go_through_the_server(app_state, demo):
    st = await roster_for(app_state, "kaicho@example.jp")
    first_ids = {r["id"] for r in st.rows}
    await RosterState.next_page.fn(st)
    assert st.page == 2 and len(st.rows) == 30 and not first_ids & {r["id"] for r in st.rows}
    await RosterState.next_page.fn(st)
    assert st.page == 2  # no page 3
    await RosterState.prev_page.fn(st)
    assert st.page == 1
    name = other_names(demo.association_id(DemoCity.A1))[0]
    await RosterState.search.fn(st, {"query": name})
    assert st.total >= 1 and any(name in r["names"] for r in st.rows) and st.page == 1
    await RosterState.search.fn(st, {"query": "x" * 500})
    assert st.error
    await RosterState.clear_search.fn(st)
    assert (st.total, st.query, st.error) == (80, "", "")


async def test_han_leader_state_holds_only_their_han(app_state, demo):
    a1 = demo.association_id(DemoCity.A1)
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    st = await roster_for(app_state, "hancho@example.jp")
    assert st.total == 20 and {r["han"] for r in st.rows} == {"1班"}
    assert not st.can_manage and not st.can_export
    text = state_text(app_state)
    # Addresses are unique in the demo (names repeat across han).
    assert not [n for n in other_names(a1, han2, "address") if n in text]
    assert [n for n in other_names(a1, han1, "address") if n in text]  # the check itself can fail


@pytest.mark.parametrize("login", ["member@example.jp", "member2@example.jp", "newcomer@example.jp",
                                   "city@example.jp", "other@example.jp"])
async def test_people_without_view_members_get_denied_and_an_empty_state(app_state, demo, login):
    st = await roster_for(app_state, login)
    assert not st.allowed and st.rows == [] and st.total == 0
    assert st.error == "この操作はできません"
    text = state_text(app_state)
    a1 = demo.association_id(DemoCity.A1)
    assert not [n for n in other_names(a1) if n in text]
    with session() as s:
        me = demo.account_id(login)
        others = [a.email for a in s.exec(select(Account).where(Account.id != me)).all() if a.email]
    assert not [e for e in others if e in text]
    assert n_audit("roster.view") == 0


async def test_anonymous_is_sent_to_login(app_state, demo):
    st = await app_state.get_state(RosterState)
    result = await RosterState.load.fn(st)
    assert "/login" in str(result) and st.rows == []


async def test_add_edit_and_remove_a_paper_household(app_state, demo):
    st = await roster_for(app_state, "kaicho@example.jp")
    han2 = st.han_options[1][0]
    await RosterState.open_add.fn(st)
    assert st.form_open and st.form_id == 0
    await RosterState.save.fn(st, {"han_id": han2, "address": "", "head_name": "", "head_kana": "abc"})
    assert st.form_errors["address"] == "入力してください" and "head_kana" in st.form_errors
    await RosterState.save.fn(st, {"han_id": han2, "address": "旭川市緑町5条1丁目1-1", "head_name": "紙野 ふみ",
                                   "head_kana": "かみの ふみ", "phone": "", "note": "", "route_position": ""})
    assert not st.form_open and st.notice == "保存しました"
    with session() as s:
        hh = s.exec(select(Household).where(Household.address == "旭川市緑町5条1丁目1-1")).one()
    await RosterState.open_edit.fn(st, str(hh.id))
    assert st.form["head_name"] == "紙野 ふみ" and st.form["head_kana"] == "カミノ フミ"
    await RosterState.save.fn(st, {**st.form, "note": "耳が遠い"})
    with session() as s:
        assert s.get(Household, hh.id).note == "耳が遠い"
    RosterState.ask_remove.fn(st, str(hh.id))
    await RosterState.remove.fn(st)
    with session() as s:
        assert s.get(Household, hh.id).removed_at is not None
    assert st.notice == "世帯を名簿から外しました"


async def test_move_changes_the_route_order(app_state, demo):
    st = await roster_for(app_state, "kaicho@example.jp")
    first, second = st.rows[0]["id"], st.rows[1]["id"]
    await RosterState.move.fn(st, second, "up")
    assert [r["id"] for r in st.rows[:2]] == [second, first]


async def test_import_preview_keeps_rows_backend_only_until_confirmed(app_state, demo):
    st = await roster_for(app_state, "kaicho@example.jp")
    csv = "班,住所,氏名,ふりがな,電話\r\n1班,旭川市緑町5条2丁目1-1,紙野 一郎,かみの いちろう,0166-11-2222\r\n"
    await RosterState.upload.fn(st, [upload_file("paper.csv", csv.encode("cp932"))])
    assert st.import_ready and st.import_total == 1 and st.import_error == ""
    assert st.import_rows[0]["name"] == "紙野 一郎"
    sent = next(v for k, v in app_state.get_delta().items() if k.endswith("roster_state"))
    assert "import_rows_rx_state_" in sent and not [k for k in sent if k.startswith("_")]
    await RosterState.confirm_import.fn(st)
    assert st.notice == "1世帯を登録しました" and st.import_rows == [] and st.total == 81
    # Confirming twice writes nothing more.
    await RosterState.confirm_import.fn(st)
    assert st.import_error and st.total == 81


async def test_import_preview_shows_each_rows_errors_in_the_chosen_language(app_state, demo):
    ui = await app_state.get_state(UIState)
    UIState.toggle_lang.fn(ui)
    st = await roster_for(app_state, "kaicho@example.jp")
    csv = "han,address,name,kana,phone\n9,旭川市緑町5条3丁目1-1,x,,\n1,,y,,\n"
    await RosterState.upload.fn(st, [upload_file("p.csv", csv.encode())])
    assert not st.import_ready and st.import_error_rows == 2
    assert [r["errors"] for r in st.import_rows] == ["There is no han “9”", "Address is missing"]
    before = st.total
    await RosterState.confirm_import.fn(st)
    assert st.total == before


@pytest.mark.parametrize("files,message", [
    ([], "ファイルを選んでください"),
    ("nope", "ファイルを選んでください"),
    ([upload_file("a.pdf", b"%PDF")], "CSVファイル(.csv)かExcelファイル(.xlsx)を選んでください"),
    ([upload_file("a.csv", b"x" * (5 * 1024 * 1024 + 1))], "ファイルが大きすぎます(5MBまで)"),
    ([upload_file("a.csv", "名前,電話\nx,1\n".encode())], "列が足りません:班・住所"),
])
async def test_bad_uploads_give_a_clear_message_and_write_nothing(app_state, demo, files, message):
    st = await roster_for(app_state, "kaicho@example.jp")
    await RosterState.upload.fn(st, files)
    assert st.import_error == message and not st.import_ready and st._rows == []


async def test_export_returns_a_download_and_is_audited(app_state, demo):
    st = await roster_for(app_state, "kaikei@example.jp")
    assert st.can_export and not st.can_manage
    event = await RosterState.export_csv.fn(st)
    assert "_download" in str(event) and "base64" in str(event)
    assert st.notice == "80世帯を出力しました"
    assert n_audit("roster.export") > 0
    event = await RosterState.export_xlsx.fn(st)
    assert "spreadsheetml" in str(event)


async def test_link_lists_candidates_and_links(app_state, demo):
    from chiiki.models import Membership, utcnow

    a1 = demo.association_id(DemoCity.A1)
    with session() as s:
        paper = s.exec(select(Household).where(Household.association_id == a1, Household.paper_only.is_(True))
                       .order_by(Household.id)).first()
        acc = s.get(Account, demo.account_id("newcomer@example.jp"))
        acc.address = paper.address
        s.add(acc)
        m = Membership(account_id=acc.id, association_id=a1, status="active", decided_at=utcnow())
        s.add(m)
        s.flush()
        mid = m.id
    st = await roster_for(app_state, "kaicho@example.jp")
    await RosterState.open_link.fn(st, str(paper.id))
    assert st.link_id == paper.id and st.link_options[0][0] == str(mid)
    await RosterState.link.fn(st, {"membership_id": ""})
    assert st.link_error == "会員を選んでください"
    await RosterState.link.fn(st, {"membership_id": str(mid)})
    assert st.notice == "アカウントと結びつけました" and st.link_id == 0
    with session() as s:
        assert s.get(Household, paper.id).paper_only is False


def test_service_page_size_keeps_the_first_page_small():
    assert roster.PAGE_SIZE <= 50


async def test_roster_rows_leave_the_tab_when_the_session_ends_elsewhere_and_someone_else_logs_in(demo, app_state):
    """A shared PC: the 会長's session expires or is revoked elsewhere; the next person to log in on the same
    tab must not find the roster the 会長 loaded in the tab's state (every reload sends the whole state)."""
    from chiiki.pages.auth import LoginState
    from chiiki.services import accounts
    from chiiki.state import AuthState

    auth = await login_state(app_state, "kaicho@example.jp")
    st = await app_state.get_state(RosterState)
    await RosterState.load.fn(st)
    name = st.rows[10]["names"]
    assert name and name in state_text(app_state)
    accounts.logout(auth._session_token())  # revoked elsewhere
    await AuthState.load_page.fn(auth, "/login")
    assert name not in state_text(app_state)  # gone as soon as the tab sees the session ended
    login = await app_state.get_state(LoginState)
    await LoginState.submit.fn(login, {"login_id": "member@example.jp", "password": "chiiki-demo-2026"})
    await AuthState.load_nav.fn(auth)
    assert name not in state_text(app_state)


async def test_roster_rows_leave_the_tab_when_the_role_is_taken_away(demo, app_state):
    from sqlmodel import select

    from chiiki.models import OfficerRole
    from chiiki.services.db import session
    from chiiki.state import AuthState

    auth = await login_state(app_state, "kaicho@example.jp")
    st = await app_state.get_state(RosterState)
    await RosterState.load.fn(st)
    name = st.rows[10]["names"]
    with session() as s:
        for role in s.exec(select(OfficerRole).where(OfficerRole.membership_id.in_(
                [m.membership_id for m in demo.actor("kaicho@example.jp").memberships]))).all():
            role.permissions = "send_circulars"
            s.add(role)
    await AuthState.load_page.fn(auth, "/circulars")
    assert not auth.can_view_members and name not in state_text(app_state)
