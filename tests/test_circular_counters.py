"""A circular's household counters (read, confirmed) always equal a recount of its deliveries.

The services change them in the transaction that changes a delivery state, after taking the circular's lock;
these tests drive every state change, refused repeats, ORM writes and concurrent confirmations from two members
of one household (which must count the household once), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import distinct, func
from sqlmodel import select

from chiiki.models import Account, Circular, Delivery, Household, Membership, utcnow
from chiiki.services import circulars, dashboard
from chiiki.services.db import session
from chiiki.services.errors import ServiceError
from tests.conftest import DemoCity


def recount(circular_id: int) -> tuple[int, int, int]:
    """(households, households read or confirmed, households confirmed), straight from the deliveries."""
    with session() as s:
        def households(*where) -> int:
            return s.exec(select(func.count(distinct(Delivery.household_id)))
                          .where(Delivery.circular_id == circular_id, *where)).one()

        return households(), households(Delivery.state != "unread"), households(Delivery.state == "confirmed")


def counters(circular_id: int) -> tuple[int, int, int]:
    with session() as s:
        c = s.get(Circular, circular_id)
        return c.household_count, c.read_households, c.confirmed_households


def assert_exact(circular_id: int) -> tuple[int, int, int]:
    now = counters(circular_id)
    assert now == recount(circular_id)
    return now


def add_second_member(household_id: int, login: str) -> int:
    """Another active member account in a household (before sending, so it gets its own delivery)."""
    with session() as s:
        h = s.get(Household, household_id)
        acc = Account(login_id=login, name="二人目 会員", display_name="二人目")
        s.add(acc)
        s.flush()
        s.add(Membership(account_id=acc.id, association_id=h.association_id, household_id=h.id, status="active"))
        return acc.id


def member_household(demo, login: str) -> int:
    with session() as s:
        return s.exec(select(Membership.household_id).where(Membership.account_id == demo.account_id(login),
                                                            Membership.status == "active")).first()


def send_all(demo, title: str = "全戸回覧") -> int:
    a1 = demo.association_id(DemoCity.A1)
    result = circulars.send(demo.actor("kaicho@example.jp"), a1, {"title": title, "body": "本文", "target_all": True})
    # What send reports is what it wrote (PostgreSQL gives no row count for INSERT … SELECT).
    rows = deliveries(result.circular_id)
    assert (result.member_accounts, result.paper_households) == (
        sum(d.channel == "digital" for d in rows), sum(d.channel == "paper" for d in rows))
    assert result.households == len({d.household_id for d in rows}) == counters(result.circular_id)[0]
    return result.circular_id


def deliveries(circular_id: int, **where) -> list[Delivery]:
    with session() as s:
        q = select(Delivery).where(Delivery.circular_id == circular_id)
        for name, value in where.items():
            q = q.where(getattr(Delivery, name) == value)
        return list(s.exec(q.order_by(Delivery.id)).all())


def test_sending_sets_the_household_count_and_zero_reach(demo):
    cid = send_all(demo)
    households, read, confirmed = assert_exact(cid)
    assert households == 80 and read == confirmed == 0  # A1 has 80 households


def test_a_mixed_sequence_keeps_the_counters_equal_to_a_recount(demo):
    home = member_household(demo, "member@example.jp")
    second = add_second_member(home, "second@example.jp")
    cid = send_all(demo)
    kaicho = demo.actor("kaicho@example.jp")
    member, other = demo.actor("member@example.jp"), None
    total = assert_exact(cid)[0]

    # Opening marks the household read once, however many members open it.
    view = circulars.open_circular(member, cid)
    assert assert_exact(cid) == (total, 1, 0)
    circulars.open_circular(member, cid)  # already read: nothing changes
    assert assert_exact(cid) == (total, 1, 0)
    from chiiki.services.accounts import load_actor_in

    with session() as s:
        other = load_actor_in(s, second)
    theirs = circulars.open_circular(other, cid)
    assert assert_exact(cid) == (total, 1, 0)

    # Both members confirm: the household is confirmed once; a second confirmation is refused and changes nothing.
    circulars.confirm(member, view.delivery_id)
    assert assert_exact(cid) == (total, 1, 1)
    with pytest.raises(ServiceError):
        circulars.confirm(member, view.delivery_id)
    circulars.confirm(other, theirs.delivery_id)
    assert assert_exact(cid) == (total, 1, 1)

    # A member who confirms without opening first makes the household read and confirmed at once.
    member2 = demo.actor("member2@example.jp")
    d2 = next(d for d in deliveries(cid) if d.account_id == demo.account_id("member2@example.jp"))
    circulars.confirm(member2, d2.id)
    assert assert_exact(cid) == (total, 2, 2)

    # Paper: delivered changes nothing, 確認印 counts, a repeat is refused, clearing takes it back.
    paper = deliveries(cid, channel="paper")
    p1, p2 = paper[0].household_id, paper[1].household_id
    assert circulars.record_paper(kaicho, cid, p1, "delivered") == "paper_delivered"
    assert assert_exact(cid) == (total, 2, 2)
    circulars.record_paper(kaicho, cid, p1, "confirmed")
    assert assert_exact(cid) == (total, 3, 3)
    with pytest.raises(ServiceError):
        circulars.record_paper(kaicho, cid, p1, "confirmed")
    circulars.record_paper(kaicho, cid, p2, "confirmed")
    assert assert_exact(cid) == (total, 4, 4)
    circulars.record_paper(kaicho, cid, p1, "clear")
    assert assert_exact(cid) == (total, 3, 3)
    circulars.record_paper(kaicho, cid, p1, "clear")  # already pending: nothing to take back
    assert assert_exact(cid) == (total, 3, 3)

    # On behalf: an unread household and a read one; a repeat is refused.
    digital = [d for d in deliveries(cid, channel="digital", state="unread")
               if d.household_id not in (home, d2.household_id)]
    unread_home = digital[0].household_id
    circulars.confirm_on_behalf(kaicho, cid, unread_home)
    assert assert_exact(cid) == (total, 4, 4)
    read_home = digital[1]
    with session() as s:
        actor = load_actor_in(s, read_home.account_id)
    circulars.open_circular(actor, cid)
    assert assert_exact(cid) == (total, 5, 4)
    circulars.confirm_on_behalf(kaicho, cid, read_home.household_id)
    assert assert_exact(cid) == (total, 5, 5)
    with pytest.raises(ServiceError):
        circulars.confirm_on_behalf(kaicho, cid, unread_home)
    assert assert_exact(cid) == (total, 5, 5)

    # The dashboard reads the counters: its rates are those of the recount.
    d = dashboard.dashboard(demo.actor("city@example.jp"))
    row = next(r for r in d.associations if r.id == demo.association_id(DemoCity.A1))
    assert (row.read_rate, row.confirm_rate) == (dashboard.rate(5, total), dashboard.rate(5, total))


def test_a_refused_change_leaves_the_counters_alone(demo):
    cid = send_all(demo)
    before = assert_exact(cid)
    member = demo.actor("member@example.jp")
    theirs = next(d for d in deliveries(cid) if d.account_id == demo.account_id("member2@example.jp"))
    with pytest.raises(ServiceError):
        circulars.confirm(member, theirs.id)
    with pytest.raises(ServiceError):
        circulars.record_paper(demo.actor("kaicho@example.jp"), cid, theirs.household_id, "confirmed")
    assert assert_exact(cid) == before


def test_deliveries_written_as_orm_objects_are_recounted(demo):
    """Seeders and scripts that bypass the services still leave exact counters (chiiki.models hook)."""
    a1 = demo.association_id(DemoCity.A1)
    with session() as s:
        homes = s.exec(select(Household.id).where(Household.association_id == a1).limit(3)).all()
        c = Circular(association_id=a1, title="直接", status="sent", sent_at=utcnow())
        s.add(c)
        s.flush()
        s.add_all([Delivery(circular_id=c.id, household_id=homes[0], state="confirmed"),
                   Delivery(circular_id=c.id, household_id=homes[1], state="read"),
                   Delivery(circular_id=c.id, household_id=homes[2])])
        cid = c.id
    assert assert_exact(cid) == (3, 2, 1)
    with session() as s:
        d = s.exec(select(Delivery).where(Delivery.circular_id == cid, Delivery.state == "unread")).one()
        d.state = "confirmed"
        s.add(d)
        s.flush()
        # The circular object in this session is refreshed, not left with the old figures.
        assert s.get(Circular, cid).confirmed_households == 2
    assert assert_exact(cid) == (3, 3, 2)
    with session() as s:
        s.delete(s.exec(select(Delivery).where(Delivery.circular_id == cid, Delivery.state == "read")).one())
    assert assert_exact(cid) == (2, 2, 2)


# --------------------------------------------------------------------------- concurrency


def _race(calls: list, meet_after_first_read: bool) -> list:
    """Run each call in its own thread, all at once; returns what each returned or raised.

    With meet_after_first_read, each thread waits (up to 1 s) for the others right after reading the
    household's states for the first time: without the circular's lock every thread would then decide
    on the same stale states and count the household twice.
    """
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))
    met = threading.Barrier(len(calls))
    local = threading.local()
    real = circulars._household_flags

    def flags(*args):
        out = real(*args)
        if meet_after_first_read and not getattr(local, "read", False):
            local.read = True
            try:
                met.wait(timeout=1.0)
            except threading.BrokenBarrierError:
                pass  # the other thread waits for our lock: the expected, serialised case
        return out

    def run(i: int, fn) -> None:
        start.wait()
        try:
            results[i] = fn()
        except Exception as e:  # noqa: BLE001 (collected for the assertions)
            results[i] = e

    circulars._household_flags = flags
    try:
        threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        circulars._household_flags = real
    return results


def _concurrent_confirms(demo) -> None:
    from chiiki.services.accounts import load_actor_in

    home = member_household(demo, "member@example.jp")
    second = add_second_member(home, "second@example.jp")
    home2 = member_household(demo, "member2@example.jp")
    third = add_second_member(home2, "third@example.jp")
    cid = send_all(demo)
    total = assert_exact(cid)[0]
    with session() as s:
        people = {acc: load_actor_in(s, acc) for acc in (demo.account_id("member@example.jp"), second,
                                                          demo.account_id("member2@example.jp"), third)}
    mine = {d.account_id: d.id for d in deliveries(cid, channel="digital") if d.account_id in people}

    # Two members of one household confirm at the same moment: the household counts once.
    a, b = list(people)[:2]
    results = _race([lambda: circulars.confirm(people[a], mine[a]), lambda: circulars.confirm(people[b], mine[b])],
                    meet_after_first_read=True)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert assert_exact(cid) == (total, 1, 1)

    # One member opens while the other confirms, and the same delivery is confirmed twice at once.
    c, d = list(people)[2:]
    results = _race([lambda: circulars.open_circular(people[c], cid), lambda: circulars.confirm(people[d], mine[d]),
                     lambda: circulars.confirm(people[d], mine[d])], meet_after_first_read=False)
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(refused) == 1 and refused[0].key == "circular.error_already_confirmed", results
    assert assert_exact(cid) == (total, 2, 2)

    # Officers record paper households while members confirm: every change counts exactly once.
    kaicho = demo.actor("kaicho@example.jp")
    paper = [p.household_id for p in deliveries(cid, channel="paper")[:3]]
    results = _race([lambda h=h: circulars.record_paper(kaicho, cid, h, "confirmed") for h in paper]
                    + [lambda: circulars.record_paper(kaicho, cid, paper[0], "confirmed")],
                    meet_after_first_read=False)
    assert sum(isinstance(r, ServiceError) for r in results) == 1, results
    assert assert_exact(cid) == (total, 5, 5)


def test_concurrent_confirmations_count_a_household_once_on_sqlite(demo):
    _concurrent_confirms(demo)


@pytest.mark.postgres
def test_concurrent_confirmations_count_a_household_once_on_postgresql(pg_app_db):
    from chiiki.seed import seed_demo

    seed_demo(content=False)
    _concurrent_confirms(DemoCity())


# --------------------------------------------------------------------------- survey answer counters


def survey_recount(survey_id: int) -> tuple[int, int]:
    from chiiki.models import SurveyParticipation

    with session() as s:
        return (s.exec(select(func.count()).select_from(SurveyParticipation)
                       .where(SurveyParticipation.survey_id == survey_id)).one(),
                s.exec(select(func.count(distinct(SurveyParticipation.household_id)))
                       .where(SurveyParticipation.survey_id == survey_id)).one())


def survey_counters(survey_id: int) -> tuple[int, int]:
    from chiiki.models import Survey

    with session() as s:
        sv = s.get(Survey, survey_id)
        return sv.answered_accounts, sv.answered_households


@pytest.mark.parametrize("per_household", [False, True])
def test_survey_answer_counters_follow_every_answer(demo, per_household):
    from datetime import timedelta

    from chiiki.i18n import TZ
    from chiiki.services import surveys

    home = member_household(demo, "member@example.jp")
    add_second_member(home, "second@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    deadline = (utcnow() + timedelta(days=7)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")
    sid = surveys.create_survey(demo.actor("kaicho@example.jp"), a1, {
        "kind": "general", "title": "出欠", "description": "", "deadline": deadline, "target_all": True,
        "per_household": per_household,
        "questions": [{"kind": "single", "text": "参加しますか", "required": True, "options": ["はい", "いいえ"]}]})
    assert survey_counters(sid) == (0, 0)
    form = surveys.get_for_answer(demo.actor("member@example.jp"), sid)
    answer = {f"q{q.id}": q.options[0].id for q in form.questions}
    surveys.submit_answer(demo.actor("member@example.jp"), sid, answer)
    assert survey_counters(sid) == survey_recount(sid) == (1, 1)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, answer)  # a changed answer is no new one
    assert survey_counters(sid) == survey_recount(sid) == (1, 1)
    second = demo.actor("second@example.jp")
    surveys.submit_answer(second, sid, answer)  # per household: replaces the household's answer
    assert survey_counters(sid) == survey_recount(sid) == ((1, 1) if per_household else (2, 1))
    surveys.submit_answer(demo.actor("member2@example.jp"), sid, answer)
    assert survey_counters(sid) == survey_recount(sid)
    assert survey_counters(sid)[1] == 2


@pytest.mark.postgres
def test_concurrent_survey_answers_never_deadlock_on_postgresql(pg_app_db):
    """Answers insert participations (a key-share lock on the survey through the foreign key) and then
    lock the survey to recount: a plain FOR UPDATE deadlocked two answering transactions."""
    from datetime import timedelta

    from chiiki.i18n import TZ
    from chiiki.seed import seed_demo
    from chiiki.services import surveys

    seed_demo(content=False)
    demo = DemoCity()
    a1 = demo.association_id(DemoCity.A1)
    deadline = (utcnow() + timedelta(days=7)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")
    sid = surveys.create_survey(demo.actor("kaicho@example.jp"), a1, {
        "kind": "general", "title": "同時回答", "description": "", "deadline": deadline, "target_all": True,
        "questions": [{"kind": "single", "text": "参加しますか", "required": True, "options": ["はい", "いいえ"]}]})
    with session() as s:
        members = s.exec(select(Membership.account_id).where(Membership.association_id == a1,
                                                             Membership.status == "active")).all()
    from chiiki.services.accounts import load_actor_in

    with session() as s:
        actors = [load_actor_in(s, i) for i in members[:16]]
    assert len(actors) >= 8
    form = surveys.get_for_answer(actors[0], sid)
    answer = {f"q{q.id}": q.options[0].id for q in form.questions}
    start, errors = threading.Barrier(len(actors)), []

    def run(actor):
        start.wait()
        for _ in range(3):
            try:
                surveys.submit_answer(actor, sid, answer)
            except Exception as e:  # noqa: BLE001 (collected and asserted below)
                errors.append(repr(e)[:200])

    threads = [threading.Thread(target=run, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert survey_counters(sid) == survey_recount(sid)
    assert survey_counters(sid)[0] == len(actors)
