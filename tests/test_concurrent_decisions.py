"""Two people (or two taps) deciding the same thing at the same moment get one decision, on SQLite and
PostgreSQL: a join request approved once, a named answer replaced once, at least one manager left."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from sqlalchemy import func
from sqlmodel import select

from chiiki.models import AuditAccess, Household, Membership, OfficerRole, SurveyAnswer, SurveyResponse, utcnow
from chiiki.seed import seed_demo
from chiiki.services import membership as ms
from chiiki.services import officers, roster, surveys
from chiiki.services.associations import first_manager_gap
from chiiki.services.db import session
from chiiki.services.errors import ServiceError
from chiiki.services.policy import OFFICER_PERMISSIONS
from tests.conftest import DemoCity


def one(q):
    with session() as s:
        return s.exec(q).one()


def both(*calls) -> list[str]:
    """Run the calls in two threads at once; "ok" or the refusal's message key of each."""
    out: list[str] = []

    def run(fn, args):
        try:
            fn(*args)
            out.append("ok")
        except ServiceError as e:
            out.append(e.key)

    threads = [threading.Thread(target=run, args=c) for c in calls]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    return out


def _a_request_and_two_paper_households(demo) -> tuple:
    """(the 会長, the newcomer's join request, two paper-only households of the association to approve it into)."""
    a1 = demo.association_id(DemoCity.A1)
    mid = ms.request_join(demo.actor("newcomer@example.jp"), a1, True, ms.CONSENT_VERSION)
    with session() as s:
        x, y = s.exec(select(Household.id).where(Household.paper_only.is_(True), Household.association_id == a1)
                      .limit(2)).all()
    return demo.actor("kaicho@example.jp"), mid, x, y


def test_two_officers_approving_one_request_at_once_make_one_decision(demo, monkeypatch):
    """The second approval used to move the applicant into another household, leaving the first one marked
    digital with no member, and both officers were told "approved"."""
    kaicho, mid, x, y = _a_request_and_two_paper_households(demo)
    meet, real = threading.Barrier(2, timeout=10), ms.lock_row
    monkeypatch.setattr(ms, "lock_row", lambda *a: (meet.wait(), real(*a))[1])  # both have read it, neither locked
    out = both((ms.approve, (kaicho, mid, {"household_id": str(x)})),
               (ms.approve, (kaicho, mid, {"household_id": str(y)})))
    assert sorted(out) == ["membership.error.decided", "ok"], out
    assert one(select(func.count()).select_from(AuditAccess).where(AuditAccess.action == "membership.decide")) == 1
    home = one(select(Membership.household_id).where(Membership.id == mid))
    with session() as s:
        assert {h: s.get(Household, h).paper_only for h in (x, y)} == {x: x != home, y: y != home}
    monkeypatch.undo()
    assert both((ms.reject, (kaicho, mid, "")),) == ["membership.error.decided"]  # and afterwards, a message


def test_an_approval_that_read_the_request_before_another_officer_approved_it_says_it_was_decided(demo, monkeypatch):
    """The order the test above leaves to chance: the other approval is committed between this one's reading of
    the request and its checks (before it takes the applicant's lock). The applicant is then active through this
    very request, which is "decided", not a membership elsewhere."""
    kaicho, mid, x, y = _a_request_and_two_paper_households(demo)
    real = ms.lock_row

    def read_then_the_other_approves(*args):
        monkeypatch.setattr(ms, "lock_row", real)
        ms.approve(kaicho, mid, {"household_id": str(y)})  # the other officer, committed meanwhile
        return real(*args)

    monkeypatch.setattr(ms, "lock_row", read_then_the_other_approves)
    with pytest.raises(ServiceError) as e:
        ms.approve(kaicho, mid, {"household_id": str(x)})
    assert e.value.key == "membership.error.decided"
    assert one(select(Membership.household_id).where(Membership.id == mid)) == y


def test_one_named_answer_changed_twice_at_once_keeps_one_answer_on_postgresql(pg_app_db, monkeypatch):
    seed_demo()
    demo = DemoCity()
    when = (utcnow() + timedelta(days=3)).astimezone(surveys.TZ).strftime("%Y-%m-%dT%H:%M")
    sid = surveys.create_survey(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1), {
        "title": "季節", "deadline": when, "target_all": True,
        "questions": [{"kind": "single", "text": "好き", "required": True, "options": ["春", "夏"]}]})
    member = demo.actor("member@example.jp")
    q = surveys.get_for_answer(member, sid).questions[0]
    surveys.submit_answer(member, sid, {f"q{q.id}": str(q.options[0].id)})
    wrote, go, real = threading.Event(), threading.Event(), surveys._write_named

    def pause(*args):
        real(*args)  # written on the transaction's connection, not yet committed
        if threading.current_thread().name == "A":  # A holds its new answer uncommitted while B starts
            wrote.set()
            go.wait(10)

    monkeypatch.setattr(surveys, "_write_named", pause)
    a = threading.Thread(target=surveys.submit_answer, args=(member, sid, {f"q{q.id}": str(q.options[1].id)}),
                         name="A")
    b = threading.Thread(target=surveys.submit_answer, args=(member, sid, {f"q{q.id}": str(q.options[0].id)}))
    a.start()
    wrote.wait(10)
    b.start()
    time.sleep(1)
    go.set()
    a.join(30)
    b.join(30)
    rid = one(select(SurveyResponse.id).where(SurveyResponse.survey_id == sid))
    assert one(select(func.count()).select_from(SurveyAnswer).where(SurveyAnswer.response_id == rid)) == 1


def test_the_last_two_managers_ending_each_others_role_at_once_leave_one_on_postgresql(pg_app_db, monkeypatch):
    seed_demo()
    demo = DemoCity()
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    mid = one(select(Membership.id).where(Membership.account_id == demo.account_id("member@example.jp")))
    kaicho_role = one(select(OfficerRole.id).join(Membership)
                      .where(Membership.account_id == demo.account_id("kaicho@example.jp")))
    vice_role = officers.grant_role(kaicho, a1, {"title": "副会長", "permissions": list(OFFICER_PERMISSIONS),
                                                 "han_id": "", "valid_from": "", "valid_until": "",
                                                 "membership_id": mid})
    vice = demo.actor("member@example.jp")
    meet, real = threading.Barrier(2, timeout=10), officers.ensure_manager_remains

    def at_once(s, *args):
        s.flush()
        try:
            meet.wait(3)  # with the association locked the other waits before reading: no meeting here
        except threading.BrokenBarrierError:
            pass
        return real(s, *args)

    monkeypatch.setattr(officers, "ensure_manager_remains", at_once)
    out = both((officers.revoke_role, (kaicho, vice_role)), (officers.revoke_role, (vice, kaicho_role)))
    assert sorted(out) == ["error.last_manager", "ok"], out
    with session() as s:
        assert first_manager_gap(s, a1, utcnow()) is None, "no manager left"


def test_one_login_id_registered_twice_at_once_is_a_message_on_postgresql(pg_app_db, monkeypatch):
    from chiiki.services import accounts

    seed_demo()
    form = {"name": "旭川 花子", "kana": "はなこ", "address": "旭川市1-2", "area_id": accounts.areas()[0][0],
            "birth_year": "1950", "login_id": "twice@example.jp", "password": "sakura-haru-1950"}
    meet, real = threading.Barrier(2, timeout=10), accounts._clean_profile
    monkeypatch.setattr(accounts, "_clean_profile", lambda *a, **k: (real(*a, **k), meet.wait())[0])
    monkeypatch.setattr(accounts, "hash_password", lambda p: "x")  # both past the check of a taken id
    out = both((accounts.register, (form,)), (accounts.register, (form,)))
    assert sorted(out) == ["error.login_taken", "ok"], out


def test_one_role_handed_over_twice_at_once_has_one_new_holder(demo, monkeypatch):
    from chiiki.services import associations

    kaicho = demo.actor("kaicho@example.jp")
    role = one(select(OfficerRole.id).join(Membership)
               .where(Membership.account_id == demo.account_id("kaicho@example.jp")))
    to = [one(select(Membership.id).where(Membership.account_id == demo.account_id(login)))
          for login in ("member@example.jp", "member2@example.jp")]
    meet, real = threading.Barrier(2, timeout=10), associations.lock_officers

    def lock(s, aid):
        try:
            meet.wait(3)  # both have been asked, neither has read the role
        except threading.BrokenBarrierError:
            pass
        real(s, aid)

    chairs = select(func.count()).select_from(OfficerRole).where(OfficerRole.title == "会長")
    before = one(chairs)
    monkeypatch.setattr(officers, "lock_officers", lock)
    out = both(*[(officers.handover_role, (kaicho, role, m, "2099-04-01", "09:00")) for m in to])
    assert sorted(out) == ["officer.error.handover_after_end", "ok"], out
    assert one(chairs) == before + 1


def test_one_invite_code_used_in_two_tabs_at_once_makes_one_membership(demo, monkeypatch):
    han1 = demo.han_ids(DemoCity.A1)[0]
    inv = ms.create_invite(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1),
                           {"days": 7, "max_uses": 5, "han_id": str(han1)})
    newcomer = demo.actor("newcomer@example.jp")
    meet, real = threading.Barrier(2, timeout=10), ms._consent
    monkeypatch.setattr(ms, "_consent", lambda *a: (real(*a), meet.wait())[0])  # both past the code's checks
    out = both((ms.join_with_code, (newcomer, inv.code, True, ms.CONSENT_VERSION)),
               (ms.join_with_code, (newcomer, inv.code, True, ms.CONSENT_VERSION)))
    assert sorted(out) == ["membership.error.already", "ok"], out
    assert one(select(func.count()).select_from(Membership).where(
        Membership.account_id == demo.account_id("newcomer@example.jp"))) == 1


def test_one_post_reported_twice_at_once_is_one_report_and_a_message(demo, monkeypatch):
    from chiiki.models import BoardReport
    from chiiki.services import board

    a1 = demo.association_id(DemoCity.A1)
    tid = board.create_thread(demo.actor("member@example.jp"), a1, "題名", "本文")
    pid = board.get_thread(demo.actor("member2@example.jp"), tid).posts[0].id
    real = board._reason
    # Each report lingers after taking the post's lock, so the second arrives while the first holds it: it
    # waits, then finds the open report (before the lock both passed the check, and the unique constraint
    # refused the second).
    monkeypatch.setattr(board, "_reason", lambda r: (real(r), time.sleep(0.3))[0])
    reporter = demo.actor("member2@example.jp")
    out = both((board.report_post, (reporter, pid, "理由")), (board.report_post, (reporter, pid, "理由")))
    assert sorted(out) == ["board.error.reported_twice", "ok"], out
    assert one(select(func.count()).select_from(BoardReport)) == 1


def test_inquiries_sent_at_the_same_moment_pass_exactly_the_limit_on_postgresql(pg_app_db, monkeypatch):
    """Eight tabs of one address sending at once, on PostgreSQL: each count is locked while it is read and
    written (an advisory lock on its key), so exactly the limit pass, none more and none less."""
    from concurrent.futures import ThreadPoolExecutor

    from chiiki.models import Department, Inquiry, LoginAttempt
    from chiiki.services import inquiries
    from chiiki.services.policy import ANONYMOUS

    seed_demo()
    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 3)
    monkeypatch.setattr(inquiries, "_deliver_one", lambda *_a: None)
    form = {"department_id": one(select(Department.id).where(Department.name == "道路維持課")), "sender_name": "訪問 者",
            "sender_contact": "0166-12-3456", "subject": "ごみ", "body": "収集日を教えてください"}
    start = threading.Barrier(8, timeout=20)

    def send(_i) -> str:
        start.wait()
        try:
            inquiries.submit(ANONYMOUS, form, client="203.0.113.9")
        except ServiceError as e:
            return e.key
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(send, range(8)))
    assert sorted(out) == ["inquiry.error.too_many"] * 5 + ["ok"] * 3, out
    assert one(select(func.count()).select_from(Inquiry)) == 3
    assert one(select(func.count()).select_from(LoginAttempt)) == 3


def _meanwhile(fn, *args) -> tuple[threading.Thread, list[str]]:
    """Start `fn` in another thread (another worker) and give it a moment: it finishes unless it waits for a lock
    the caller holds. Returns the thread and its outcome, filled in when it ends ("ok" or the message key)."""
    out: list[str] = []

    def run():
        try:
            fn(*args)
            out.append("ok")
        except ServiceError as e:
            out.append(e.key)

    t = threading.Thread(target=run)
    t.start()
    t.join(1.5)
    return t, out


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request):
    """The demo city on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("demo")
    request.getfixturevalue("pg_app_db")
    seed_demo(content=False)
    return DemoCity()


def test_a_code_join_while_an_officer_approves_the_request_never_undoes_the_approval(any_db, monkeypatch):
    """The officer approved the applicant into paper household X while the applicant joined with a code: the
    code join moved them to a new household, leaving X marked digital with no member (on PostgreSQL; a
    rejection became a membership the same way). Now whichever comes second sees the first."""
    demo = any_db
    kaicho, mid, x, _y = _a_request_and_two_paper_households(demo)
    inv = ms.create_invite(kaicho, demo.association_id(DemoCity.A1),
                           {"days": 7, "max_uses": 1, "han_id": str(demo.han_ids(DemoCity.A1)[1])})
    real, officer = ms._invite_household, []

    def officer_approves_meanwhile(*args):
        officer.append(_meanwhile(ms.approve, kaicho, mid, {"household_id": str(x)}))
        return real(*args)

    monkeypatch.setattr(ms, "_invite_household", officer_approves_meanwhile)
    joined = ms.join_with_code(demo.actor("newcomer@example.jp"), inv.code, True, ms.CONSENT_VERSION)
    thread, outcome = officer[0]
    thread.join(30)
    assert joined.joined and outcome == ["membership.error.decided"]
    with session() as s:
        m = s.get(Membership, mid)
        assert (m.status, m.household_id != x) == ("active", True)
        assert s.get(Household, x).paper_only is True  # still gets its paper copy


def test_a_code_join_after_an_approval_is_refused_and_keeps_it(any_db):
    demo = any_db
    kaicho, mid, x, _y = _a_request_and_two_paper_households(demo)
    inv = ms.create_invite(kaicho, demo.association_id(DemoCity.A1), {"days": 7, "max_uses": 1,
                                                                      "han_id": str(demo.han_ids(DemoCity.A1)[1])})
    ms.reject(kaicho, mid, "")
    rejected = ms.request_join(demo.actor("newcomer@example.jp"), demo.association_id(DemoCity.A1), True,
                               ms.CONSENT_VERSION)
    ms.approve(kaicho, rejected, {"household_id": str(x)})
    with pytest.raises(ServiceError) as e:
        ms.join_with_code(demo.actor("newcomer@example.jp"), inv.code, True, ms.CONSENT_VERSION)
    assert e.value.key == "membership.error.already"
    assert one(select(Membership.household_id).where(Membership.id == rejected)) == x
    assert one(select(Membership.status).where(Membership.id == mid)) == "rejected"


def test_withdrawing_a_request_while_an_officer_approves_it_keeps_one_outcome(any_db, monkeypatch):
    """The withdrawal read the request, the officer approved it, then the withdrawal deleted the membership just
    approved (its household stayed marked digital with no member). Now the approval waits for the withdrawal
    and says so."""
    demo = any_db
    kaicho, mid, x, _y = _a_request_and_two_paper_households(demo)
    real, officer = ms._open_membership, []

    def officer_approves_meanwhile(*args):
        officer.append(_meanwhile(ms.approve, kaicho, mid, {"household_id": str(x)}))
        return real(*args)

    monkeypatch.setattr(ms, "_open_membership", officer_approves_meanwhile)
    ms.cancel_request(demo.actor("newcomer@example.jp"))
    thread, outcome = officer[0]
    thread.join(30)
    assert outcome == ["membership.error.withdrawn"]
    with session() as s:
        assert s.get(Membership, mid) is None
        assert s.get(Household, x).paper_only is True


def test_withdrawing_a_request_an_officer_has_decided_says_so_and_keeps_the_decision(demo):
    kaicho, mid, x, _y = _a_request_and_two_paper_households(demo)
    ms.approve(kaicho, mid, {"household_id": str(x)})
    with pytest.raises(ServiceError) as e:
        ms.cancel_request(demo.actor("newcomer@example.jp"))
    assert e.value.key == "membership.error.cancel_decided"
    assert one(select(Membership.status).where(Membership.id == mid)) == "active"


def _after_reading(module, name: str, monkeypatch) -> None:
    """Make `module.name` (a read of the roster) wait, once it has read, for the other thread to have read too,
    for at most 2 s: with the roster locked before reading, the other is still waiting for the lock (no meeting)."""
    meet, real = threading.Barrier(2), getattr(module, name)

    def read_then_meet(*args, **kwargs):
        out = real(*args, **kwargs)
        try:
            meet.wait(2)
        except threading.BrokenBarrierError:
            pass
        return out

    monkeypatch.setattr(module, name, read_then_meet)


def _households_at(aid: int, address: str) -> list[tuple[int, int]]:
    """(han, route position) of the association's households at this address."""
    with session() as s:
        return s.exec(select(Household.han_id, Household.route_position).where(
            Household.association_id == aid, Household.address == address, Household.removed_at.is_(None))).all()


def _positions_are_distinct(aid: int) -> bool:
    with session() as s:
        rows = s.exec(select(Household.han_id, Household.route_position).where(
            Household.association_id == aid, Household.removed_at.is_(None))).all()
    return len(rows) == len(set(rows))


def test_one_roster_import_confirmed_twice_at_once_adds_its_households_once(any_db, monkeypatch):
    """Two taps on 取り込む (or two officers with the same file): both checked the rows against the roster before
    either wrote, and the households were added twice, at the same route positions."""
    from tests.test_roster_services import csv_bytes

    demo = any_db
    a1, kaicho = demo.association_id(DemoCity.A1), demo.actor("kaicho@example.jp")
    rows = [("1班", "旭川市緑町5条8丁目1-1", "紙野 一郎", "", ""), ("2班", "旭川市緑町5条8丁目1-2", "紙野 二郎", "", "")]
    preview = roster.preview_import(kaicho, a1, "roster.csv", csv_bytes(rows))
    assert preview.ok
    _after_reading(roster, "_check_all", monkeypatch)
    twice = (roster.confirm_import, (kaicho, a1, preview.raw()))
    out = both(twice, twice)
    assert sorted(out) == ["ok", "roster.import.changed"], out
    assert len(_households_at(a1, "旭川市緑町5条8丁目1-1")) == len(_households_at(a1, "旭川市緑町5条8丁目1-2")) == 1
    assert _positions_are_distinct(a1)


def test_one_household_added_twice_at_once_is_on_the_roster_once(any_db, monkeypatch):
    from tests.test_roster_services import form

    demo = any_db
    a1, kaicho = demo.association_id(DemoCity.A1), demo.actor("kaicho@example.jp")
    han1 = demo.han_ids(DemoCity.A1)[0]
    _after_reading(roster, "_existing_addresses", monkeypatch)
    data = form(han1, address="旭川市緑町5条8丁目7-7")
    out = both((roster.save_household, (kaicho, a1, data)), (roster.save_household, (kaicho, a1, data)))
    assert sorted(out) == ["ok", "roster.error.address_taken"], out
    assert len(_households_at(a1, "旭川市緑町5条8丁目7-7")) == 1
    assert _positions_are_distinct(a1)


def test_two_households_moved_at_once_keep_one_place_each_on_the_route(any_db, monkeypatch):
    """The first household of 1班 moved down while its third moved up: each wrote the order it had read, and two
    households shared the second place."""
    demo = any_db
    a1, kaicho = demo.association_id(DemoCity.A1), demo.actor("kaicho@example.jp")
    with session() as s:
        first, _second, third = s.exec(select(Household.id).where(
            Household.han_id == demo.han_ids(DemoCity.A1)[0], Household.removed_at.is_(None))
            .order_by(Household.route_position)).all()[:3]
    _after_reading(roster, "_han_order", monkeypatch)
    out = both((roster.move_household, (kaicho, first, "down")), (roster.move_household, (kaicho, third, "up")))
    assert out == ["ok", "ok"], out
    assert _positions_are_distinct(a1)


def _one_correction_of_two_taps_at_once(demo, monkeypatch) -> None:
    from chiiki.models import CircularAmendment
    from chiiki.services import circulars
    from tests.test_circular_services import send_to

    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, han_nos=(1,)).circular_id
    meet, real = threading.Barrier(2, timeout=10), circulars.lock_row
    monkeypatch.setattr(circulars, "lock_row", lambda *a: (meet.wait(), real(*a))[1])  # both checked, neither locked
    out = both((circulars.amend, (kaicho, cid, "集合は9時です")), (circulars.amend, (kaicho, cid, "集合は9時です")))
    assert out == ["ok", "ok"], out
    assert one(select(func.count()).select_from(CircularAmendment).where(CircularAmendment.circular_id == cid)) == 1


def test_a_correction_tapped_twice_at_once_is_published_once(demo, monkeypatch):
    _one_correction_of_two_taps_at_once(demo, monkeypatch)


def test_a_correction_tapped_twice_at_once_is_published_once_on_postgresql(pg_app_db, monkeypatch):
    seed_demo(content=False)
    _one_correction_of_two_taps_at_once(DemoCity(), monkeypatch)


def test_a_reminder_and_a_correction_at_once_take_turns_on_postgresql(pg_app_db, monkeypatch):
    """Both mark the same members' deliveries notified: they take the circular's lock one after the other
    (neither waits on rows the other locked in another order), and both are done."""
    from chiiki.models import CircularAmendment, Delivery
    from chiiki.services import circulars
    from tests.test_circular_services import send_to

    seed_demo(content=False)
    demo = DemoCity()
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, han_nos=(1, 2)).circular_id
    meet, real = threading.Barrier(2, timeout=10), circulars.lock_row
    monkeypatch.setattr(circulars, "lock_row", lambda *a: (meet.wait(), real(*a))[1])
    out = both((circulars.amend, (kaicho, cid, "集合は9時です")), (circulars.renotify, (kaicho, cid)))
    assert out == ["ok", "ok"], out
    assert one(select(func.count()).select_from(CircularAmendment).where(CircularAmendment.circular_id == cid)) == 1
    assert one(select(func.count()).select_from(Delivery).where(Delivery.circular_id == cid,
                                                              Delivery.notified_at.is_not(None))) > 0
