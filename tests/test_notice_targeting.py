"""City notices reach exactly the residents they target; bad drafts write nothing; only city staff publish."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Account, Area, Notice, NoticeArea, NoticeRead, OutboxMail, utcnow
from chiiki.services import notices
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ValidationErrors
from chiiki.services.policy import ANONYMOUS, Actor



def count(model) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


@pytest.fixture
def town(empty_db):
    """City -> districts 中央 (blocks 旭町, 本町) and 東 (block 末広); a staff account; ids by name."""
    with session() as s:
        city = Area(name="市", level="city")
        s.add(city)
        s.flush()
        central = Area(name="中央", level="district", parent_id=city.id)
        east = Area(name="東", level="district", parent_id=city.id)
        s.add_all([central, east])
        s.flush()
        blocks = [Area(name="旭町", level="block", parent_id=central.id),
                  Area(name="本町", level="block", parent_id=central.id),
                  Area(name="末広", level="block", parent_id=east.id)]
        s.add_all(blocks)
        staff = Account(login_id="staff@example.jp", name="職員", is_city_staff=True, area_id=city.id,
                        birth_year=None)
        s.add(staff)
        s.flush()
        ids = {a.name: a.id for a in [city, central, east, *blocks]}
        ids["staff"] = staff.id
    return ids


def resident(area_id: int | None, birth_year: int | None, *, small_children: bool = False, email: str = "",
             email_notices: bool = False, locale: str = "ja") -> int:
    with session() as s:
        acc = Account(login_id=f"r{utcnow().timestamp()}-{birth_year}-{area_id}-{small_children}@example.jp",
                      name="住民", area_id=area_id, birth_year=birth_year, has_small_children=small_children,
                      email=email, email_notices=email_notices, locale=locale)
        s.add(acc)
        s.flush()
        return acc.id


def staff(town) -> Actor:
    return Actor(account_id=town["staff"], display_name="職員", is_city_staff=True)


def feed_ids(account_id: int, now=None) -> list[int]:
    return [i.id for i in notices.feed(Actor(account_id=account_id), 100, 0, now=now).items]


Y = notices.this_year()

# (area name or None, age this year or None, small children, reached by "中央 district AND 65+")
TABLE = [
    ("旭町", 65, False, True),    # a block inside the district, exactly 65 this year
    ("旭町", 64, False, False),   # one year too young
    ("本町", 66, False, True),
    ("本町", 75, False, True),
    ("中央", 80, False, True),    # registered on the district itself
    ("末広", 65, False, False),   # right age, other district
    ("東", 90, False, False),
    ("市", 70, False, False),     # the city node is above the target, not inside it
    (None, 70, False, False),     # no area chosen
    ("旭町", None, True, False),  # no birth year: no age band
    ("旭町", 30, True, False),    # a life stage that was not chosen
]


def test_area_and_65_plus_reach_exactly_the_right_residents(town):
    people = {}
    for area, age, kids, expected in TABLE:
        aid = town[area] if area else None
        people[resident(aid, Y - age if age is not None else None, small_children=kids)] = expected
    draft = {"title": "敬老会", "body": "本文", "area_ids": [town["中央"]], "bands": ["age_65_plus"]}
    expected_ids = {pid for pid, exp in people.items() if exp}
    assert notices.reach_count(staff(town), draft) == len(expected_ids) == 4
    published = notices.publish(staff(town), draft)
    assert published.reach == len(expected_ids)
    for pid, exp in people.items():
        assert (published.notice_id in feed_ids(pid)) is exp, (pid, exp)


def test_attachments_open_for_exactly_the_residents_whose_feed_shows_the_notice(town):
    """The download check and the feed share one targeting rule, row for row."""
    people = {}
    for area, age, kids, expected in TABLE:
        aid = town[area] if area else None
        people[resident(aid, Y - age if age is not None else None, small_children=kids)] = expected
    gone = resident(town["旭町"], Y - 70)  # would match, but the account is deleted
    with session() as s:
        acc = s.get(Account, gone)
        acc.deleted_at = utcnow()
        s.add(acc)
    people[gone] = False
    f = notices.upload_file(staff(town), "敬老会.pdf", b"%PDF-1.4\n%%EOF\n")
    draft = {"title": "敬老会", "body": "本文", "area_ids": [town["中央"]], "bands": ["age_65_plus"]}
    nid = notices.publish(staff(town), draft, [f.id]).notice_id
    for pid, exp in people.items():
        assert (nid in feed_ids(pid)) is exp, (pid, exp)
        try:
            notices.attachment_for(Actor(account_id=pid), f.id)
            opened = True
        except NotFound:
            opened = False
        assert opened is exp, (pid, exp)
    assert notices.attachment_for(staff(town), f.id)[0].id == f.id


@pytest.mark.parametrize("age,band,inside", [
    (17, "age_18_29", False), (18, "age_18_29", True), (29, "age_18_29", True), (30, "age_18_29", False),
    (29, "age_30_49", False), (30, "age_30_49", True), (49, "age_30_49", True), (50, "age_30_49", False),
    (49, "age_50_64", False), (50, "age_50_64", True), (64, "age_50_64", True), (65, "age_50_64", False),
    (64, "age_65_plus", False), (65, "age_65_plus", True), (100, "age_65_plus", True),
    (74, "age_75_plus", False), (75, "age_75_plus", True),
])
def test_band_edges_agree_between_the_count_and_the_feed(town, age, band, inside):
    pid = resident(town["旭町"], Y - age)
    draft = {"title": "t", "body": "b", "bands": [band]}
    assert notices.reach_count(staff(town), draft) == int(inside)
    nid = notices.publish(staff(town), draft).notice_id
    assert (nid in feed_ids(pid)) is inside
    assert (band in notices.bands_of(Y - age, False, Y)) is inside


def test_age_counts_in_city_time_so_new_year_in_japan_is_the_new_year():
    # 15:30 UTC on 31 December is 00:30 on 1 January in Asahikawa.
    assert notices.this_year(datetime(2026, 12, 31, 15, 30, tzinfo=timezone.utc)) == 2027
    assert notices.this_year(datetime(2026, 12, 31, 14, 30, tzinfo=timezone.utc)) == 2026


def test_several_bands_reach_anyone_matching_one_of_them(town):
    young = resident(town["旭町"], Y - 25)
    parent = resident(town["末広"], Y - 40, small_children=True)
    middle = resident(town["本町"], Y - 40)
    nid = notices.publish(staff(town), {"title": "子育て", "body": "b", "bands": ["age_18_29", "small_children"]}
                          ).notice_id
    assert nid in feed_ids(young) and nid in feed_ids(parent) and nid not in feed_ids(middle)


def test_everyone_reaches_every_resident_but_not_deleted_accounts(town):
    a, b = resident(town["末広"], None), resident(None, Y - 40)
    gone = resident(town["旭町"], Y - 70)
    with session() as s:
        acc = s.get(Account, gone)
        acc.deleted_at = utcnow()
        s.add(acc)
    result = notices.publish(staff(town), {"title": "全員", "body": "b", "everyone": "on",
                                           "area_ids": [town["旭町"]], "bands": ["age_75_plus"]})
    # "Everyone" replaces the narrower choices, and the stored notice says so.
    assert result.reach == 3  # a, b and the staff account
    assert result.notice_id in feed_ids(a) and result.notice_id in feed_ids(b)
    with session() as s:
        n = s.get(Notice, result.notice_id)
        assert n.target_everyone and n.bands == ""
        assert s.exec(select(NoticeArea).where(NoticeArea.notice_id == n.id)).all() == []


def test_feed_shows_only_published_notices_urgent_first_with_unread_markers(town):
    pid = resident(town["旭町"], Y - 50)
    now = utcnow()
    st = staff(town)
    old = notices.publish(st, {"title": "古い", "body": "b", "everyone": "on"}, now=now - timedelta(days=2)).notice_id
    urgent = notices.publish(st, {"title": "緊急", "body": "b", "everyone": "on", "urgent": "on"},
                             now=now - timedelta(days=3)).notice_id
    new = notices.publish(st, {"title": "新しい", "body": "b", "everyone": "on"}, now=now - timedelta(hours=1)).notice_id
    later = (now + timedelta(days=3)).astimezone(notices.TZ)
    notices.publish(st, {"title": "予定", "body": "b", "everyone": "on", "publish_from_date": later.date().isoformat()})
    ended = notices.publish(st, {"title": "終了", "body": "b", "everyone": "on"}, now=now - timedelta(days=5)).notice_id
    notices.withdraw(st, ended)
    assert feed_ids(pid) == [urgent, new, old]
    f = notices.feed(Actor(account_id=pid))
    assert f.total == 3 and f.unread == 3 and not any(i.read for i in f.items)
    notices.mark_read(Actor(account_id=pid), str(new))
    notices.mark_read(Actor(account_id=pid), new)  # twice is harmless
    f = notices.feed(Actor(account_id=pid))
    assert f.unread == 2 and [i.read for i in f.items] == [False, True, False]
    assert count(NoticeRead) == 1


def test_a_resident_cannot_mark_a_notice_not_meant_for_them(town):
    pid = resident(town["末広"], Y - 30)
    nid = notices.publish(staff(town), {"title": "t", "body": "b", "area_ids": [town["中央"]]}).notice_id
    with pytest.raises(NotFound):
        notices.mark_read(Actor(account_id=pid), nid)
    assert count(NoticeRead) == 0


def test_body_is_kept_as_text_never_turned_into_html(town):
    pid = resident(town["旭町"], Y - 30)
    body = "<script>alert(1)</script>\n- 項目 [押す](javascript:alert(1))\n\n詳しくは https://city.example.jp/a?b=1 へ"
    notices.publish(staff(town), {"title": "t", "body": body, "everyone": "on"})
    blocks = notices.feed(Actor(account_id=pid)).items[0].blocks
    segs = [(b.kind, s.kind, s.text, s.href) for b in blocks for line in b.lines for s in line.segs]
    assert ("p", "text", "<script>alert(1)</script>", "") in segs
    assert ("ul", "text", "項目 [押す](javascript:alert(1))", "") in segs
    assert ("p", "a", "https://city.example.jp/a?b=1", "https://city.example.jp/a?b=1") in segs


@pytest.mark.parametrize("draft,field,key", [
    ({"title": "t", "body": "b"}, "target", "notice.error.no_target"),
    ({"title": "t", "body": "b", "area_ids": [], "bands": []}, "target", "notice.error.no_target"),
    ({"title": "t", "body": "b", "everyone": "on", "publish_from_date": "2030-05-02",
      "publish_until_date": "2030-05-01"}, "publish_until", "notice.error.window"),
    ({"title": "t", "body": "b", "everyone": "on", "publish_from_date": "2030-05-02", "publish_from_time": "10:00",
      "publish_until_date": "2030-05-02", "publish_until_time": "10:00"}, "publish_until", "notice.error.window"),
    ({"title": "t", "body": "b", "everyone": "on", "publish_from_date": "2020-01-01",
      "publish_until_date": "2020-01-02"}, "publish_until", "notice.error.ended"),
    ({"title": "", "body": "b", "everyone": "on"}, "title", "error.required"),
    ({"title": "t", "body": "x" * (notices.BODY_MAX + 1), "everyone": "on"}, "body", "error.too_long"),
    ({"title": "t", "body": "b", "bands": ["age_0_17"]}, "target", "error.invalid"),
    ({"title": "t", "body": "b", "area_ids": [999999]}, "target", "error.invalid"),
    ({"title": "t", "body": "b", "area_ids": "1"}, "target", "error.invalid"),
    ({"title": "t", "body": "b", "everyone": "on", "publish_from_date": "2030-13-01"}, "publish_from", "error.date"),
    # A time without its date (meant for 18:00 tonight) is not dropped: the notice would go out, and be mailed, now.
    ({"title": "t", "body": "b", "everyone": "on", "publish_from_time": "18:00"}, "publish_from",
     "notice.error.time_without_date"),
    ({"title": "t", "body": "b", "everyone": "on", "publish_from_date": " ", "publish_from_time": "18:00"},
     "publish_from", "notice.error.time_without_date"),
    ({"title": "t", "body": "b", "everyone": "on", "publish_until_time": "18:00"}, "publish_until",
     "notice.error.time_without_date"),
])
def test_bad_drafts_give_a_clear_message_and_write_nothing(town, draft, field, key):
    for fn in (notices.reach_count, notices.publish):
        with pytest.raises(ValidationErrors) as e:
            fn(staff(town), draft)
        assert e.value.errors[field][0] == key
    assert count(Notice) == 0 and count(NoticeArea) == 0 and count(OutboxMail) == 0


def test_residents_who_asked_get_it_by_email_when_it_is_published_now(town):
    resident(town["旭町"], Y - 70, email="old@example.jp", email_notices=True)
    resident(town["旭町"], Y - 70, email="en@example.jp", email_notices=True, locale="en")
    resident(town["旭町"], Y - 70, email="no@example.jp", email_notices=False)
    resident(town["末広"], Y - 70, email="far@example.jp", email_notices=True)
    result = notices.publish(staff(town), {"title": "敬老会のご案内", "body": "会場は公民館", "area_ids": [town["中央"]],
                                           "bands": ["age_65_plus"]})
    assert result.mailed == 2
    with session() as s:
        mails = {m.to_address: m for m in s.exec(select(OutboxMail)).all()}
    assert set(mails) == {"old@example.jp", "en@example.jp"}
    assert "敬老会のご案内" in mails["old@example.jp"].subject and "会場は公民館" in mails["old@example.jp"].body
    assert mails["en@example.jp"].subject.startswith("[City notice]")


def test_a_scheduled_notice_is_mailed_once_when_its_window_opens(town):
    resident(town["旭町"], Y - 40, email="a@example.jp", email_notices=True)
    now = utcnow()
    start = (now + timedelta(days=2)).astimezone(notices.TZ)
    notices.mail_due(now=now)  # first run: sets the mark
    result = notices.publish(staff(town), {"title": "予定", "body": "b", "everyone": "on",
                                           "publish_from_date": start.date().isoformat(),
                                           "publish_from_time": start.strftime("%H:%M")}, now=now)
    assert result.mailed == 0 and count(OutboxMail) == 0
    assert notices.mail_due(now=now + timedelta(days=1)) == 0
    assert notices.mail_due(now=now + timedelta(days=2, minutes=1)) == 1
    assert notices.mail_due(now=now + timedelta(days=2, minutes=2)) == 0
    assert count(OutboxMail) == 1


def test_withdrawing_a_notice_takes_back_its_mails_not_yet_sent(town):
    """A notice published by mistake is withdrawn at once: its queued mails are not sent on; those of another
    notice, and a mail already sent, stay as they are."""
    from chiiki.services import mail

    for i in range(3):
        resident(town["旭町"], Y - 40, email=f"r{i}@example.jp", email_notices=True)
    wrong = notices.publish(staff(town), {"title": "誤り", "body": "b", "everyone": "on"})
    notices.publish(staff(town), {"title": "正しいお知らせ", "body": "b", "everyone": "on"})
    with session() as s:
        first = s.exec(select(OutboxMail).where(OutboxMail.subject.contains("誤り")).order_by(OutboxMail.id)).first()
        first.sent_at = utcnow()  # one went out before the withdrawal
        s.add(first)
    notices.withdraw(staff(town), wrong.notice_id)
    with session() as s:
        subjects = [m.subject for m in s.exec(select(OutboxMail).where(OutboxMail.sent_at.is_(None))).all()]
    assert len(subjects) == 3 and all("正しいお知らせ" in x for x in subjects)
    assert count(OutboxMail) == 4
    assert mail.deliver_queued().sent == 3


@pytest.mark.parametrize("who", ["anonymous", "resident"])
def test_only_city_staff_write_count_list_and_withdraw_notices(town, who):
    actor = ANONYMOUS if who == "anonymous" else Actor(account_id=resident(town["旭町"], Y - 40))
    draft = {"title": "t", "body": "b", "everyone": "on"}
    for call in (lambda: notices.reach_count(actor, draft), lambda: notices.publish(actor, draft),
                 lambda: notices.admin_list(actor), lambda: notices.withdraw(actor, 1),
                 lambda: notices.area_choices(actor)):
        with pytest.raises(Denied):
            call()
    assert count(Notice) == 0


def test_an_officer_is_not_city_staff(demo):
    officer = demo.actor("kaicho@example.jp")
    with pytest.raises(Denied):
        notices.publish(officer, {"title": "t", "body": "b", "everyone": "on"})
    with pytest.raises(Denied):
        notices.feed(ANONYMOUS)
    # …but reads the feed like any resident.
    nid = notices.publish(demo.actor("city@example.jp"), {"title": "t", "body": "b", "everyone": "on"}).notice_id
    assert nid in [i.id for i in notices.feed(officer).items]


def test_the_admin_list_counts_each_notices_readers_on_every_page(town):
    """Read counts per notice, for the notices of the page only (the list no longer counts every read)."""
    people = [resident(town["旭町"], 1950) for _ in range(4)]
    made = [notices.publish(staff(town), {"title": f"お知らせ{i}", "body": "本文", "everyone": True},
                            now=utcnow() - timedelta(hours=3 - i)).notice_id for i in range(3)]
    for reader, nid in [(people[0], made[0]), (people[1], made[0]), (people[2], made[0]), (people[0], made[2]),
                        (people[3], made[2])]:
        notices.mark_read(Actor(account_id=reader), nid)
    items, total = notices.admin_list(staff(town), limit=2)
    assert total == 3 and [(i.id, i.read_count) for i in items] == [(made[2], 2), (made[1], 0)]
    items, _ = notices.admin_list(staff(town), limit=2, offset=2)
    assert [(i.id, i.read_count) for i in items] == [(made[0], 3)]


def test_two_previews_never_single_out_a_few_residents(town):
    """Each count shown to staff hides 1-4 residents, and larger ones are rounded to five: otherwise 旭町 with 65+
    (6) against 旭町 without it (5) would tell staff that exactly one resident of 旭町 is 65 or older."""
    for _ in range(5):
        resident(town["旭町"], Y - 40)
    resident(town["旭町"], Y - 82)
    who = staff(town)
    base = {"title": "t", "body": "b", "area_ids": [town["旭町"]]}
    young = ["age_18_29", "age_30_49", "age_50_64"]
    shown = [notices.shown_count(notices.reach_count(who, {**base, "bands": bands}))
             for bands in (young + ["age_65_plus"], young)]
    assert shown == [5, 5]
    assert [notices.shown_count(n) for n in (0, 1, 4, 5, 7, 8, 12, 13, 1234)] == [0, None, None, 5, 5, 10, 10, 15, 1235]


def test_a_last_day_without_a_time_shows_the_notice_all_that_day(town):
    """Publish until 5/31 (no time): shown until 5/31 24:00 city time, as an officer's term ends (not at 23:59),
    and the list names 5/31 as its last day."""
    r = resident(town["旭町"], 1980)
    now = datetime(2026, 5, 10, 1, 0, tzinfo=timezone.utc)
    nid = notices.publish(staff(town), {"title": "t", "body": "b", "everyone": True,
                                        "publish_until_date": "2026-05-31"}, now=now).notice_id
    with session() as s:
        assert s.get(Notice, nid).publish_until.astimezone(notices.TZ) == datetime(2026, 6, 1, tzinfo=notices.TZ)
    ids = lambda at: [i.id for i in notices.feed(Actor(account_id=r), now=at).items]  # noqa: E731
    assert nid in ids(datetime(2026, 5, 31, 23, 59, 30, tzinfo=notices.TZ))
    assert nid not in ids(datetime(2026, 6, 1, 0, 0, tzinfo=notices.TZ))
    # A one-day notice: from and until the same date.
    one = notices.publish(staff(town), {"title": "t", "body": "b", "everyone": True, "publish_from_date": "2026-05-20",
                                        "publish_until_date": "2026-05-20"}, now=now).notice_id
    assert one in ids(datetime(2026, 5, 20, 22, 0, tzinfo=notices.TZ))
    from chiiki.pages.notices import until_text

    items = {i.id: i for i in notices.admin_list(staff(town), now=now)[0]}
    assert until_text(items[nid].publish_until, "ja") == "2026年5月31日"
    assert until_text(items[one].publish_until, "en") == "2026-05-20"
