"""City notices (お知らせ): written by city staff, targeted by area and age band / life stage, read by residents.

Targeting rules (one place, used by the reach count, the feed and the email fan-out):
- "everyone": every resident (every account not deleted).
- otherwise a resident must match the areas (when any are chosen) AND the bands (when any are chosen).
  Areas: a resident matches when their area is a chosen area or lies under one (a district includes its blocks).
  Bands: a resident matches when they fall in at least one chosen age band or life stage.
- Age is "this calendar year (city time) minus birth year": the age the person reaches on this year's birthday.
  Only the birth year is stored, so a person born in 1961 counts as 65 during the whole of 2026. A resident
  without a birth year matches no age band (they still get notices that choose no band).
- "small_children" is the life stage the resident chose on their profile (Account.has_small_children).

Attachments (PDF and images, chiiki.services.attachments): city staff upload them while writing a notice;
they are linked to the notice in the transaction that publishes it. A resident downloads one only while the
notice is in their feed (the same rule as above); city staff may download the files of any notice.

Email: residents who chose Account.email_notices get the notice by email when its publish window opens —
at once when the editor publishes a notice that starts now (within EMAIL_NOW_SLACK), otherwise through the
job `mail_due()` when its start time passes. Either way the mail is queued (chiiki.services.mail) in one
INSERT ... SELECT, never one query per resident.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import Integer, and_, bindparam, case, delete, exists, false, func, literal, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from chiiki import settings as settings_module
from chiiki.i18n import TZ, tr
from chiiki.models import Account, Area, Attachment, CitySetting, Notice, NoticeArea, NoticeRead, OutboxMail, utcnow
from chiiki.services import accounts, attachments, mail, markup, validate
from chiiki.services.associations import _area_items, _descendants, end_moment, moment, page_args, require
from chiiki.services.db import fetch, fetch_one, reading, session
from chiiki.services.errors import NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import AUTHENTICATED, CITY_ADMIN, SMALL_GROUP, Actor, can

# Age bands: name -> (lowest age, highest age or None). Residents are adults, so bands start at 18.
BANDS: dict[str, tuple[int, int | None]] = {
    "age_18_29": (18, 29),
    "age_30_49": (30, 49),
    "age_50_64": (50, 64),
    "age_65_plus": (65, None),
    "age_75_plus": (75, None),
}
SMALL_CHILDREN = "small_children"
TARGETS: tuple[str, ...] = (*BANDS, SMALL_CHILDREN)
TITLE_MAX = 200
BODY_MAX = 10_000
# A notice whose window opens within this time from publishing is mailed at once.
EMAIL_NOW_SLACK = timedelta(minutes=1)
MAIL_MARK_KEY = "notice_mail_mark"
MAIL_KIND = "notice"


def _mail_kind(notice_id: int) -> str:
    """OutboxMail.kind of one notice's mails ("notice:<id>"): a withdrawal takes back those not yet sent."""
    return f"{MAIL_KIND}:{notice_id}"


def this_year(now: datetime | None = None) -> int:
    return (now or utcnow()).astimezone(TZ).year


def bands_of(birth_year: int | None, has_small_children: bool, year: int) -> set[str]:
    """The bands and life stages one resident falls in this year (see the module rule)."""
    found = {SMALL_CHILDREN} if has_small_children else set()
    if birth_year:
        age = year - birth_year
        found |= {name for name, (lo, hi) in BANDS.items() if age >= lo and (hi is None or age <= hi)}
    return found


def _band_sql(name: str, year: int):
    """The same rule as bands_of, as a condition on Account."""
    if name == SMALL_CHILDREN:
        return Account.has_small_children.is_(True)
    lo, hi = BANDS[name]
    cond = Account.birth_year <= year - lo
    return cond if hi is None else and_(cond, Account.birth_year >= year - hi)


@dataclass(frozen=True)
class Target:
    everyone: bool
    area_ids: tuple[int, ...]
    bands: tuple[str, ...]


def _resident_filter(s: Session, target: Target, year: int) -> list:
    """WHERE conditions on Account selecting exactly the residents a target reaches."""
    cond = [Account.deleted_at.is_(None)]
    if target.everyone:
        return cond
    if target.area_ids:
        items = _area_items(s)
        subtree: set[int] = set()
        for aid in target.area_ids:
            subtree |= _descendants(items, aid)
        cond.append(Account.area_id.in_(sorted(subtree)))
    if target.bands:
        cond.append(or_(*[_band_sql(b, year) for b in target.bands]))
    return cond


# --------------------------------------------------------------------------- input


def _clean_target(s: Session, data: dict, errors: dict) -> Target | None:
    everyone = data.get("everyone") in (True, "on", "true", "1")
    raw_areas = data.get("area_ids") or []
    raw_bands = data.get("bands") or []
    if not isinstance(raw_areas, (list, tuple)) or not isinstance(raw_bands, (list, tuple)) \
            or len(raw_areas) > 500 or len(raw_bands) > len(TARGETS):
        errors["target"] = "error.invalid"
        return None
    try:
        area_ids = tuple(sorted({validate.ident(a, "target") for a in raw_areas}))
        bands = tuple(b for b in TARGETS if b in {validate.choice(x, "target", TARGETS) for x in raw_bands})
    except ServiceError as e:
        errors["target"] = e
        return None
    if area_ids:
        known = set(s.exec(select(Area.id).where(Area.id.in_(area_ids))).all())
        if known != set(area_ids):
            errors["target"] = "error.invalid"
            return None
    if everyone:
        # "Everyone" replaces any narrower choice, so what is stored is what the editor saw counted.
        return Target(True, (), ())
    if not area_ids and not bands:
        errors["target"] = "notice.error.no_target"
        return None
    return Target(False, area_ids, bands)


@dataclass(frozen=True)
class _Draft:
    title: str
    body: str
    publish_from: datetime
    publish_until: datetime | None
    urgent: bool
    target: Target
    files: tuple[Attachment, ...] = ()


def run_checks(checks: dict[str, Callable[[], object]]) -> tuple[dict, dict]:
    """Run every field's check: (cleaned values, {field: ServiceError}), so a form shows all its errors at once."""
    out: dict = {}
    errors: dict = {}
    for field, check in checks.items():
        try:
            out[field] = check()
        except ServiceError as e:
            errors[field] = e
    return out, errors


def _day_and_time(data: dict, field: str) -> tuple[object, object]:
    """A window edge's date and time from the form. A time without a date is refused: dropped, it made a notice
    meant for 18:00 appear (and be mailed) at once, or one meant to end at 18:00 never end."""
    day, clock = data.get(field + "_date"), data.get(field + "_time")
    if not str(day or "").strip() and str(clock or "").strip():
        raise ServiceError("notice.error.time_without_date", field)
    return day, clock


def _clean(s: Session, data: object, now: datetime, actor: Actor | None = None,
           attachment_ids: object = None) -> _Draft:
    """Check every field of a draft, and its attachments (the actor's own unlinked uploads) when an actor is given."""
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    file_check = {"attachments": lambda: attachments.pending(s, actor, attachments.parse_ids(attachment_ids),
                                                             attachments.NOTICE)} if actor is not None else {}
    out, errors = run_checks({
        "title": lambda: validate.text(data.get("title"), "title", max_len=TITLE_MAX),
        "body": lambda: validate.text(data.get("body"), "body", max_len=BODY_MAX, multiline=True),
        "publish_from": lambda: moment(*_day_and_time(data, "publish_from"), "publish_from", required=False) or now,
        # A last day without a time: shown all of that day (until the next day's 00:00, as an officer's term).
        "publish_until": lambda: end_moment(*_day_and_time(data, "publish_until"), "publish_until"),
        **file_check,
    })
    target = _clean_target(s, data, errors)
    start, end = out.get("publish_from"), out.get("publish_until")
    if start is not None and end is not None and "publish_until" not in errors:
        if end <= start:
            errors["publish_until"] = "notice.error.window"
        elif end <= now:
            errors["publish_until"] = "notice.error.ended"
    if errors:
        raise ValidationErrors(errors)
    return _Draft(out["title"], out["body"], start, end, data.get("urgent") in (True, "on", "true", "1"), target,
                  tuple(out.get("attachments", ())))


# --------------------------------------------------------------------------- city staff


# Counts of residents shown to city staff below SMALL_GROUP are shown as "fewer than": a target that reaches
# one or two people, and whether they opened a notice, would otherwise say something about those people.
# Larger counts are rounded to a multiple of it: otherwise two previews (旭町 with 65+ and without) would
# differ by exactly the one resident of 旭町 who is 65 or older.


def shown_count(n: int) -> int | None:
    """A count as staff may see it: 0 as it is, None for 1 to SMALL_GROUP - 1 (shown as "fewer than
    SMALL_GROUP"), anything more rounded to the nearest multiple of SMALL_GROUP (shown as "about")."""
    if n <= 0:
        return 0
    if n < SMALL_GROUP:
        return None
    return (n + SMALL_GROUP // 2) // SMALL_GROUP * SMALL_GROUP


def _reach(s: Session, target: Target, now: datetime) -> int:
    # count(*), not count(id): PostgreSQL can then count from one of Account's reach indexes alone.
    return s.exec(select(func.count()).select_from(Account)
                  .where(*_resident_filter(s, target, this_year(now)))).one()


def reach_count(actor: Actor, data: dict, attachment_ids: object = None, *, now: datetime | None = None) -> int:
    """Check a whole draft (with its attachments) and say how many residents it would reach, before publishing."""
    require(actor, CITY_ADMIN)
    now = now or utcnow()
    with session() as s:
        return _reach(s, _clean(s, data, now, actor, attachment_ids).target, now)


@dataclass(frozen=True)
class Published:
    notice_id: int
    reach: int
    mailed: int


def publish(actor: Actor, data: dict, attachment_ids: object = None, *, now: datetime | None = None) -> Published:
    """Create a notice with its targets and attachments in ONE transaction; mail it now when its window opens now."""
    require(actor, CITY_ADMIN)
    now = now or utcnow()
    with session() as s:
        d = _clean(s, data, now, actor, attachment_ids)
        n = Notice(title=d.title, body=d.body, publish_from=d.publish_from, publish_until=d.publish_until,
                   urgent=d.urgent, target_everyone=d.target.everyone, bands=" ".join(d.target.bands),
                   created_by=actor.account_id, created_at=now)
        s.add(n)
        s.flush()
        s.add_all([NoticeArea(notice_id=n.id, area_id=a) for a in d.target.area_ids])
        attachments.link(s, actor, list(d.files), attachments.NOTICE, n.id)
        s.flush()
        reach = _reach(s, d.target, now)
        mailed = _fan_out(s, n, d.target, this_year(now), now) if d.publish_from <= now + EMAIL_NOW_SLACK else 0
        return Published(n.id, reach, mailed)


def withdraw(actor: Actor, notice_id: object, *, now: datetime | None = None) -> None:
    """End a notice's publication now (a scheduled one never appears), and take back its mails not yet sent
    (a notice withdrawn because it was wrong is not mailed on)."""
    require(actor, CITY_ADMIN)
    nid = validate.ident(notice_id, "notice_id")
    now = now or utcnow()
    with session() as s:
        n = s.get(Notice, nid)
        if n is None:
            raise NotFound()
        if n.publish_until is None or n.publish_until > now:
            n.publish_until = max(now, n.publish_from)
            s.add(n)
        s.exec(delete(OutboxMail).where(OutboxMail.kind == _mail_kind(n.id), OutboxMail.sent_at.is_(None)))


def upload_file(actor: Actor, filename: object, data: object) -> attachments.AttachmentInfo:
    """Keep a file for the notice being written (linked to it when it is published)."""
    require(actor, CITY_ADMIN)
    return attachments.store(actor, attachments.NOTICE, filename, data)


def discard_file(actor: Actor, attachment_id: object) -> None:
    """Remove one of the actor's own uploads before publishing."""
    require(actor, CITY_ADMIN)
    attachments.discard(actor, attachment_id)


_FILES_OF = (select(Attachment.notice_id, Attachment.id, Attachment.filename, Attachment.content_type, Attachment.size)
             .where(Attachment.notice_id.in_(bindparam("nf_ids", expanding=True))).order_by(Attachment.id))


def _files(conn: Connection, notice_ids: list[int]) -> dict[int, tuple[attachments.AttachmentInfo, ...]]:
    """The attachments of these notices, by notice, in upload order (one prepared query)."""
    found: dict[int, list[attachments.AttachmentInfo]] = {}
    if notice_ids:
        for notice_id, *info in conn.execute(_FILES_OF, {"nf_ids": notice_ids}):
            found.setdefault(notice_id, []).append(attachments.AttachmentInfo(*info))
    return {k: tuple(v) for k, v in found.items()}


def attachment_for(actor: Actor, attachment_id: object,
                   *, now: datetime | None = None) -> tuple[attachments.AttachmentInfo, str]:
    """A notice attachment the actor may download, with its storage key; NotFound for anything else.

    City staff: the file of any notice (scheduled, published or ended). Residents: only while the notice is
    in their feed (published now and meant for them). A draft upload is never served.
    """
    try:
        aid = validate.ident(attachment_id, "attachment_id")
    except ServiceError:
        raise NotFound() from None
    if not actor.authenticated:
        raise NotFound()
    now = now or utcnow()
    with session() as s:
        a = s.get(Attachment, aid)
        if a is None or a.notice_id is None:
            raise NotFound()
        if not can(actor, CITY_ADMIN) and s.exec(
                select(Notice.id).where(Notice.id == a.notice_id, *_visible(s, actor.account_id, now))).first() is None:
            raise NotFound()
        return attachments.info(a), a.storage_key


@dataclass(frozen=True)
class AdminItem:
    id: int
    title: str
    urgent: bool
    publish_from: datetime
    publish_until: datetime | None
    status: str  # scheduled | published | ended
    everyone: bool
    areas: tuple[str, ...]
    bands: tuple[str, ...]
    read_count: int
    attachments: tuple[attachments.AttachmentInfo, ...] = ()


def status_of(publish_from: datetime, publish_until: datetime | None, now: datetime) -> str:
    # A scheduled notice that was withdrawn ends where it would have begun (withdraw): it is ended, not scheduled.
    if publish_until is not None and publish_until <= max(now, publish_from):
        return "ended"
    if publish_from > now:
        return "scheduled"
    return "published"


def admin_list(actor: Actor, limit: object = 20, offset: object = 0,
               *, now: datetime | None = None) -> tuple[list[AdminItem], int]:
    """Every notice, newest first, with how many residents opened it (a count)."""
    require(actor, CITY_ADMIN)
    lim, off = page_args(limit, offset)
    now = now or utcnow()
    with session() as s:
        total = s.exec(select(func.count(Notice.id))).one()
        notices = s.exec(select(Notice).order_by(Notice.publish_from.desc(), Notice.id.desc())
                         .offset(off).limit(lim)).all()
        ids = [n.id for n in notices]
        # The page's notices only, through the (notice_id, account_id) unique index: counting the reads of
        # every notice ever published grew with the city's whole reading history (870,000 reads in a year).
        reads = dict(s.exec(select(NoticeRead.notice_id, func.count()).where(NoticeRead.notice_id.in_(ids))
                            .group_by(NoticeRead.notice_id)).all()) if ids else {}
        labels = {a.id: a.label for a in _area_items(s)}
        areas: dict[int, list[str]] = {}
        for nid, aid in s.exec(select(NoticeArea.notice_id, NoticeArea.area_id)
                               .where(NoticeArea.notice_id.in_(ids)).order_by(NoticeArea.id)).all():
            areas.setdefault(nid, []).append(labels.get(aid, ""))
        files = _files(s.connection(), ids)
        return [AdminItem(n.id, n.title, n.urgent, n.publish_from, n.publish_until,
                          status_of(n.publish_from, n.publish_until, now), n.target_everyone,
                          tuple(areas.get(n.id, ())), tuple(n.bands.split()), int(reads.get(n.id, 0)),
                          files.get(n.id, ()))
                for n in notices], total


def area_choices(actor: Actor) -> list[tuple[int, str, int]]:
    """(id, "city / district / block" label, depth) of every area, for the editor's target list."""
    require(actor, CITY_ADMIN)
    with session() as s:
        return [(a.id, a.label, a.depth) for a in _area_items(s)]


# --------------------------------------------------------------------------- residents


_RESIDENT = select(Account.area_id, Account.birth_year, Account.has_small_children, Account.deleted_at).where(
    Account.id == bindparam("nv_account", type_=Integer))


def _audience(conn: Connection, account_id: int, now: datetime) -> tuple[list[int], tuple[str, ...]] | None:
    """The resident's area with the areas above it, and the bands they fall in now (None: no such resident)."""
    found = fetch(conn, _RESIDENT, {"nv_account": account_id})
    acc = found[0] if found else None
    if acc is None or acc.deleted_at is not None:
        return None
    chain = accounts.area_chain(acc.area_id, conn)
    return chain, tuple(sorted(bands_of(acc.birth_year, acc.has_small_children, this_year(now))))


def _visible_for(now, chain, bands: tuple[str, ...]) -> list:
    """Conditions on Notice: published at `now` and meant for a resident of these areas and bands.

    `now` and `chain` are values or bind parameters (the feed prepares its statements once per shape)."""
    has_areas = exists().where(NoticeArea.notice_id == Notice.id)
    in_area = exists().where(NoticeArea.notice_id == Notice.id, NoticeArea.area_id.in_(chain)) \
        if chain is not None else false()
    padded = literal(" ") + Notice.bands + literal(" ")
    in_band = or_(*[padded.like(f"% {b} %") for b in bands]) if bands else false()
    return [
        Notice.publish_from <= now,
        or_(Notice.publish_until.is_(None), Notice.publish_until > now),
        or_(Notice.target_everyone.is_(True),
            and_(or_(~has_areas, in_area), or_(Notice.bands == "", in_band))),
    ]


def _visible(s: Session, account_id: int, now: datetime):
    """Conditions on Notice: published now and meant for this resident (the Python side of the rule)."""
    audience = _audience(s.connection(), account_id, now)
    if audience is None:
        return [false()]
    chain, bands = audience
    return _visible_for(now, chain or None, bands)


@functools.lru_cache(maxsize=128)
def _feed_statements(areas: int, bands: tuple[str, ...]):
    """The feed's count and page for residents whose area chain has `areas` areas (0: no area) and these bands,
    prepared once: every resident opens the feed, and the few shapes repeat. The chain is one parameter per
    area (nf_a0, nf_a1, …), not an expanding IN, so that db.fetch runs the statement as compiled."""
    now = bindparam("nf_now", type_=Notice.__table__.c.publish_from.type)
    chain = [bindparam(f"nf_a{i}", type_=Integer) for i in range(areas)]
    cond = _visible_for(now, chain or None, bands)
    read = exists().where(NoticeRead.notice_id == Notice.id,
                          NoticeRead.account_id == bindparam("nf_account", type_=Integer))
    counts = select(func.count(Notice.id), func.coalesce(func.sum(case((read, 0), else_=1)), 0)).where(*cond)
    c = Notice.__table__.c
    files = exists().where(Attachment.notice_id == Notice.id).correlate(Notice)
    page = (select(c.id, c.title, c.body, c.urgent, c.publish_from, read.label("read"), files.label("files"))
            .where(*cond)
            .order_by(Notice.urgent.desc(), Notice.publish_from.desc(), Notice.id.desc())
            .offset(bindparam("nf_offset", type_=Integer)).limit(bindparam("nf_limit", type_=Integer)))
    return counts, page


@dataclass(frozen=True)
class FeedItem:
    id: int
    title: str
    blocks: list[markup.Block]  # chiiki.services.markup: rendered as text and http(s) links, never HTML
    urgent: bool
    publish_from: datetime
    read: bool
    attachments: tuple[attachments.AttachmentInfo, ...] = ()


@dataclass(frozen=True)
class Feed:
    items: list[FeedItem]
    total: int
    unread: int


def feed(actor: Actor, limit: object = 20, offset: object = 0, *, now: datetime | None = None) -> Feed:
    """The notices meant for this resident and published now: urgent first, then newest."""
    require(actor, AUTHENTICATED)
    lim, off = page_args(limit, offset)
    now = now or utcnow()
    with reading() as conn:  # prepared Core statements: no ORM session
        audience = _audience(conn, actor.account_id, now)
        if audience is None:
            return Feed([], 0, 0)
        chain, bands = audience
        counts, page = _feed_statements(len(chain), bands)
        params = {"nf_now": now, "nf_account": actor.account_id, **{f"nf_a{i}": a for i, a in enumerate(chain)}}
        total, unread = fetch_one(conn, counts, params)
        rows = fetch(conn, page, {**params, "nf_offset": off, "nf_limit": lim})
        files = _files(conn, [n.id for n in rows if n.files])  # only when a notice of the page has any
    items = [FeedItem(n.id, n.title, markup.parse(n.body), n.urgent, n.publish_from, bool(n.read), files.get(n.id, ()))
             for n in rows]
    return Feed(items, total, int(unread))


def mark_read(actor: Actor, notice_id: object, *, now: datetime | None = None) -> None:
    """Record that the resident opened a notice; only a notice in their own feed counts."""
    require(actor, AUTHENTICATED)
    nid = validate.ident(notice_id, "notice_id")
    now = now or utcnow()
    with session() as s:
        if s.exec(select(Notice.id).where(Notice.id == nid, *_visible(s, actor.account_id, now))).first() is None:
            raise NotFound()
        ins = (pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert)(NoticeRead)
        s.execute(ins.values(notice_id=nid, account_id=actor.account_id, read_at=now)
                  .on_conflict_do_nothing(index_elements=["notice_id", "account_id"]))


# --------------------------------------------------------------------------- email


def _fan_out(s: Session, n: Notice, target: Target, year: int, now: datetime) -> int:
    """Queue the notice for every targeted resident who asked for notices by email: one statement per language."""
    url = settings_module.settings.public_url.rstrip("/") + "/notices"
    recipients = select(Account.email, Account.locale).where(
        *_resident_filter(s, target, year), Account.email_notices.is_(True), Account.email != "")
    texts = {lang: (tr(lang, "notice.mail_subject", title=n.title),
                    tr(lang, "notice.mail_body", title=n.title, body=markup.plain(n.body), url=url))
             for lang in ("ja", "en")}
    # Counted by the statement's RETURNING: psycopg gives no row count for INSERT … SELECT (it said 0 mailed).
    return mail.enqueue_select(s, recipients, texts, _mail_kind(n.id))


def mail_due(now: datetime | None = None) -> int:
    """Job: mail the scheduled notices whose window opened since the last run.

    The last run's time is a CitySetting; a worker claims the interval by a compare-and-set on it, in the
    same transaction as the mail it queues, so two workers never mail the same notice twice.
    """
    now = now or utcnow()
    try:
        with session() as s:
            row = s.get(CitySetting, MAIL_MARK_KEY)
            if row is None:
                s.add(CitySetting(key=MAIL_MARK_KEY, value=now.isoformat()))
                s.flush()
                return 0
            old = datetime.fromisoformat(row.value)
            if old >= now:
                return 0
            claimed = s.execute(update(CitySetting).where(CitySetting.key == MAIL_MARK_KEY,
                                                          CitySetting.value == row.value)
                                .values(value=now.isoformat())).rowcount
            if not claimed:
                return 0
            due = s.exec(select(Notice).where(Notice.publish_from > old, Notice.publish_from <= now,
                                              or_(Notice.publish_until.is_(None), Notice.publish_until > now))).all()
            year = this_year(now)
            sent = 0
            for n in due:
                # Notices whose window opened at publishing were mailed then (see publish()).
                if n.publish_from <= n.created_at + EMAIL_NOW_SLACK:
                    continue
                area_ids = tuple(s.exec(select(NoticeArea.area_id).where(NoticeArea.notice_id == n.id)).all())
                sent += _fan_out(s, n, Target(n.target_everyone, area_ids, tuple(n.bands.split())), year, now)
            return sent
    except IntegrityError:  # another worker created the mark at the same moment
        return 0
