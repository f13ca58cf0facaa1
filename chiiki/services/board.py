"""The members' board (掲示板): threads, replies, reports and moderation, plus its safe text renderer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, bindparam, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from chiiki.models import Account, BoardPost, BoardReport, BoardThread, utcnow
from chiiki.services import audit, validate
from chiiki.services.associations import require
from chiiki.services.db import fetch, fetch_one, lock_row, reading, session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.markup import URL, safe_url, trim_url
from chiiki.services.policy import MEMBER, MODERATE_BOARD, Actor, Assoc, can

TITLE_MAX = 100
BODY_MAX = 5000
REASON_MAX = 500
# Anything longer than this is refused before any text processing (a 100 KB paste costs nothing).
RAW_LIMIT = BODY_MAX * 4
THREADS_PER_PAGE = 20
POSTS_PER_PAGE = 30
REPORTS_PER_PAGE = 20
# Posting rate limit per person (threads and replies alike; deleted posts still count).
RATE_WINDOW = timedelta(minutes=10)
RATE_MAX = 5
MIN_INTERVAL = timedelta(seconds=20)

RESOLUTIONS = ("hide", "dismiss")


# --------------------------------------------------------------------------- safe formatting


@dataclass(frozen=True)
class Segment:
    """One piece of a paragraph: kind "text", "link" (href is http/https) or "br" (a line break)."""

    kind: str
    text: str = ""
    href: str = ""


# Deliberately smaller than chiiki.services.markup (circulars): no bold, lists or labelled links, because any
# member may post here and a label could disguise where a link goes. Bare URLs are found as markup finds them.
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u3000]*\n")


def _line_segments(line: str) -> list[Segment]:
    out: list[Segment] = []
    pos = 0
    for m in URL.finditer(line):
        url = trim_url(m.group(0))
        href = safe_url(url)
        if not href:
            continue
        if m.start() > pos:
            out.append(Segment("text", line[pos:m.start()]))
        out.append(Segment("link", url, href))
        pos = m.start() + len(url)
    if pos < len(line):
        out.append(Segment("text", line[pos:]))
    return out


def render(body: str) -> tuple[tuple[Segment, ...], ...]:
    """A post as paragraphs of plain text, line breaks and http(s) links.

    Nothing here is HTML: the page builds elements from these pieces and the browser shows every
    character literally, so `<script>` or `<img onerror=…>` is text and `javascript:` never becomes a link.
    """
    text = (body or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ()
    paragraphs = []
    for block in _PARAGRAPH_BREAK.split(text):
        segs: list[Segment] = []
        for i, line in enumerate(block.strip("\n").split("\n")):
            if i:
                segs.append(Segment("br"))
            segs.extend(_line_segments(line))
        if segs:
            paragraphs.append(tuple(segs))
    return tuple(paragraphs)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ThreadSummary:
    id: int
    # "visible", "deleted" or "hidden": the opening post's state, as this viewer may see it.
    state: str
    title: str  # "" unless this viewer may read it
    author: str
    mine: bool
    replies: int
    created_at: datetime
    last_post_at: datetime


@dataclass(frozen=True)
class ThreadList:
    items: tuple[ThreadSummary, ...]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class PostView:
    id: int
    author: str
    mine: bool
    opening: bool
    created_at: datetime
    edited_at: datetime | None
    # "visible", "deleted" or "hidden". A hidden post's text reaches only its author and moderators.
    state: str
    body: str  # the source text, only for whoever may read it (the author needs it to edit)
    paragraphs: tuple[tuple[Segment, ...], ...]
    hidden_reason: str  # only for the author and moderators
    under_review: bool  # for the author only: the post has open reports, so it cannot be edited meanwhile
    can_edit: bool
    can_delete: bool
    can_report: bool
    reported_by_me: bool
    can_hide: bool
    can_unhide: bool


@dataclass(frozen=True)
class ThreadView:
    id: int
    state: str
    title: str
    posts: tuple[PostView, ...]
    total: int
    page: int
    pages: int
    can_moderate: bool


@dataclass(frozen=True)
class ReportLine:
    reporter: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class ReportedPost:
    post_id: int
    thread_id: int
    thread_title: str
    author: str
    body: str
    paragraphs: tuple[tuple[Segment, ...], ...]
    hidden: bool
    reports: tuple[ReportLine, ...]


@dataclass(frozen=True)
class ReportQueue:
    items: tuple[ReportedPost, ...]
    total: int
    page: int
    pages: int


# --------------------------------------------------------------------------- helpers


def _name(display_name: str | None) -> str:
    # A display name only, never a real name (DESIGN privacy rule 1); the page shows a fallback for "".
    return (display_name or "").strip()


def may_moderate(actor: Actor, association_id: int) -> bool:
    """The board belongs to the whole association, so only an association-wide moderate_board counts.

    A 班長 holding moderate_board for one han cannot hide posts: posts do not belong to a han.
    """
    return can(actor, MEMBER, Assoc(association_id)) and can(actor, MODERATE_BOARD, Assoc(association_id))


def _page_number(page: object) -> int:
    return validate.integer(page, "page", lo=1, hi=10**6, required=False) or 1


def _pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


def _body(value: object) -> str:
    if isinstance(value, str) and len(value) > RAW_LIMIT:
        raise ServiceError("error.too_long", "body", max=BODY_MAX)
    return validate.text(value, "body", max_len=BODY_MAX, multiline=True).replace("\r\n", "\n")


def _title(value: object) -> str:
    if isinstance(value, str) and len(value) > RAW_LIMIT:
        raise ServiceError("error.too_long", "title", max=TITLE_MAX)
    return validate.text(value, "title", max_len=TITLE_MAX)


def _reason(value: object, field: str = "reason") -> str:
    if isinstance(value, str) and len(value) > RAW_LIMIT:
        raise ServiceError("error.too_long", field, max=REASON_MAX)
    return validate.text(value, field, max_len=REASON_MAX, multiline=True)


def _member_association(actor: Actor, association_id: object) -> int:
    if not actor.authenticated or not actor.memberships:
        raise Denied()
    aid = validate.ident(association_id, "association_id")
    require(actor, MEMBER, Assoc(aid))
    return aid


def _thread_for(s: Session, actor: Actor, thread_id: object) -> BoardThread:
    """A thread of an association the actor belongs to; any other id reads as "not found"."""
    tid = validate.ident(thread_id, "thread_id")
    if not actor.authenticated or not actor.memberships:
        raise Denied()
    thread = s.get(BoardThread, tid)
    if thread is None or not can(actor, MEMBER, Assoc(thread.association_id)):
        # The same answer for "no such thread" and "another association's thread": nothing to probe.
        raise NotFound()
    return thread


def _post_for(s: Session, actor: Actor, post_id: object) -> tuple[BoardPost, BoardThread]:
    """A post of an association the actor belongs to, locked for writing until the transaction ends.

    Every caller changes the post after checking its state: without the lock an edit that read the post
    before a delete or a moderator's hide committed would write its text back over them."""
    pid = validate.ident(post_id, "post_id")
    if not actor.authenticated or not actor.memberships:
        raise Denied()
    lock_row(s, BoardPost, pid)  # before reading it, so that the read sees what the previous writer left
    post = s.get(BoardPost, pid)
    thread = s.get(BoardThread, post.thread_id) if post is not None else None
    if thread is None or not can(actor, MEMBER, Assoc(thread.association_id)):
        raise NotFound()
    return post, thread


def _opening_ids(s: Session, thread_ids: list[int]) -> dict[int, int]:
    if not thread_ids:
        return {}
    rows = s.exec(
        select(BoardPost.thread_id, func.min(BoardPost.id)).where(BoardPost.thread_id.in_(thread_ids))
        .group_by(BoardPost.thread_id)
    ).all()
    return {tid: pid for tid, pid in rows}


def _is_opening(s: Session, post: BoardPost) -> bool:
    return _opening_ids(s, [post.thread_id]).get(post.thread_id) == post.id


def _state(post: BoardPost | _Opener) -> str:
    if post.deleted_at is not None:
        return "deleted"
    if post.hidden_at is not None:
        return "hidden"
    return "visible"


def _readable(post: BoardPost | _Opener, actor: Actor, moderator: bool) -> bool:
    """Who may read a post's text: everyone while visible; its author and moderators while hidden."""
    state = _state(post)
    if state == "visible":
        return True
    return state == "hidden" and (post.author_account_id == actor.account_id or moderator)


def _check_rate(s: Session, actor: Actor, now: datetime) -> None:
    # Lock the poster so two simultaneous posts cannot both slip under the limit.
    lock_row(s, Account, actor.account_id)
    recent = s.exec(
        select(BoardPost.created_at).where(BoardPost.author_account_id == actor.account_id,
                                           BoardPost.created_at >= now - RATE_WINDOW)
        .order_by(BoardPost.created_at.desc())
    ).all()
    if len(recent) >= RATE_MAX:
        raise ServiceError("board.error.rate_limit", "body", n=RATE_MAX, minutes=int(RATE_WINDOW.total_seconds() // 60))
    if recent:
        last = recent[0] if recent[0].tzinfo else recent[0].replace(tzinfo=now.tzinfo)
        wait = MIN_INTERVAL - (now - last)
        if wait.total_seconds() > 0:
            raise ServiceError("board.error.too_fast", "body", seconds=math.ceil(wait.total_seconds()))


# --------------------------------------------------------------------------- reading


# The thread list (every member opens the board): statements prepared once, executed as Core rows.
_ASSOCIATION = BoardThread.association_id == bindparam("bt_association", type_=Integer)
_THREAD_COUNT = select(func.count()).select_from(BoardThread).where(_ASSOCIATION)
# Per thread of the page (sorted and cut first, so the work is one page's whatever the association's size):
# its opening post (the first), that post's author, and how many posts it has.
_PAGE = (select(BoardThread.id, BoardThread.title, BoardThread.author_account_id, BoardThread.created_at,
                BoardThread.last_post_at).where(_ASSOCIATION)
         .order_by(BoardThread.last_post_at.desc(), BoardThread.id.desc())
         .limit(bindparam("bt_limit", type_=Integer)).offset(bindparam("bt_offset", type_=Integer))).subquery()
_ANY_POST = aliased(BoardPost)  # the thread's posts inside the subqueries, apart from the joined opening post
_FIRST_POST = select(func.min(_ANY_POST.id)).where(_ANY_POST.thread_id == _PAGE.c.id).scalar_subquery()
_POST_COUNT = select(func.count()).select_from(_ANY_POST).where(_ANY_POST.thread_id == _PAGE.c.id).scalar_subquery()
_THREAD_PAGE = (select(_PAGE, _POST_COUNT.label("posts"), BoardPost.id.label("opener_id"),
                       BoardPost.author_account_id.label("opener_author"), BoardPost.deleted_at, BoardPost.hidden_at,
                       Account.display_name)
                .select_from(_PAGE)
                .join(BoardPost, BoardPost.id == _FIRST_POST, isouter=True)
                .join(Account, Account.id == BoardPost.author_account_id, isouter=True)
                .order_by(_PAGE.c.last_post_at.desc(), _PAGE.c.id.desc()))


@dataclass(frozen=True)
class _Opener:
    """The columns of an opening post that decide how its thread is shown (as _state and _readable read them)."""
    author_account_id: int | None
    deleted_at: datetime | None
    hidden_at: datetime | None


def list_threads(actor: Actor, association_id: object, page: object = 1,
                 per_page: int = THREADS_PER_PAGE) -> ThreadList:
    """The association's threads, newest activity first, one page at a time (two prepared statements)."""
    aid = _member_association(actor, association_id)
    number = _page_number(page)
    moderator = may_moderate(actor, aid)
    with reading() as conn:
        total = fetch_one(conn, _THREAD_COUNT, {"bt_association": aid})[0]
        pages = _pages(total, per_page)
        number = min(number, pages)
        rows = fetch(conn, _THREAD_PAGE, {"bt_association": aid, "bt_limit": per_page,
                                "bt_offset": (number - 1) * per_page})
    items = []
    for t in rows:
        post = _Opener(t.opener_author, t.deleted_at, t.hidden_at) if t.opener_id is not None else None
        state = _state(post) if post is not None else "deleted"
        readable = post is not None and _readable(post, actor, moderator)
        items.append(ThreadSummary(
            id=t.id, state=state, title=t.title if readable else "",
            author=_name(t.display_name) if state != "deleted" else "", mine=t.author_account_id == actor.account_id,
            replies=max(0, t.posts - 1), created_at=t.created_at, last_post_at=t.last_post_at,
        ))
    return ThreadList(tuple(items), total, number, pages)


def get_thread(actor: Actor, thread_id: object, page: object = 1, per_page: int = POSTS_PER_PAGE) -> ThreadView:
    """A thread's posts, oldest first, one page at a time, each as this viewer may see it."""
    with session() as s:
        thread = _thread_for(s, actor, thread_id)
        moderator = may_moderate(actor, thread.association_id)
        total = s.exec(select(func.count()).select_from(BoardPost).where(BoardPost.thread_id == thread.id)).one()
        pages = _pages(total, per_page)
        number = _page_number(page)
        number = pages if number > pages else number
        rows = s.exec(
            select(BoardPost, Account.display_name)
            .join(Account, Account.id == BoardPost.author_account_id, isouter=True)
            .where(BoardPost.thread_id == thread.id)
            .order_by(BoardPost.created_at, BoardPost.id)
            .limit(per_page).offset((number - 1) * per_page)
        ).all()
        ids = [p.id for p, _ in rows]
        # Open reports only: once the moderators closed a report, its reporter may report the post again.
        open_reports = s.exec(
            select(BoardReport.post_id, BoardReport.reporter_account_id)
            .where(BoardReport.post_id.in_(ids or [0]), BoardReport.resolved_at.is_(None))
        ).all()
        under_review = {pid for pid, _r in open_reports}
        mine_reported = {pid for pid, reporter in open_reports if reporter == actor.account_id}
        opening_id = _opening_ids(s, [thread.id]).get(thread.id)
        posts = tuple(_post_view(p, name, actor, moderator, p.id == opening_id, p.id in mine_reported,
                                 p.id in under_review) for p, name in rows)
        opener = s.get(BoardPost, opening_id) if opening_id else None
        state = _state(opener) if opener is not None else "deleted"
        title = thread.title if opener is not None and _readable(opener, actor, moderator) else ""
        return ThreadView(thread.id, state, title, posts, total, number, pages, moderator)


def _post_view(p: BoardPost, name: str | None, actor: Actor, moderator: bool, opening: bool,
               reported: bool, under_review: bool) -> PostView:
    state = _state(p)
    mine = p.author_account_id is not None and p.author_account_id == actor.account_id
    readable = _readable(p, actor, moderator)
    return PostView(
        id=p.id, author=_name(name) if state != "deleted" else "", mine=mine, opening=opening,
        created_at=p.created_at, edited_at=p.edited_at, state=state,
        body=p.body if readable else "", paragraphs=render(p.body) if readable else (),
        hidden_reason=p.hidden_reason if state == "hidden" and (mine or moderator) else "",
        # The author is told why the edit button is gone (edit_post refuses with the same words anyway).
        under_review=mine and state == "visible" and under_review,
        can_edit=mine and state == "visible" and not under_review, can_delete=mine and state != "deleted",
        can_report=not mine and state == "visible" and not reported, reported_by_me=reported,
        can_hide=moderator and state == "visible", can_unhide=moderator and state == "hidden",
    )


# --------------------------------------------------------------------------- writing


def create_thread(actor: Actor, association_id: object, title: object, body: object,
                  now: datetime | None = None) -> int:
    """A new thread with its opening post; returns the thread id."""
    aid = _member_association(actor, association_id)
    errors: dict[str, ServiceError] = {}
    clean: dict[str, str] = {}
    for field, fn, value in (("title", _title, title), ("body", _body, body)):
        try:
            clean[field] = fn(value)
        except ServiceError as e:
            errors[field] = e
    if errors:
        raise ValidationErrors(errors)
    now = now or utcnow()
    with session() as s:
        _check_rate(s, actor, now)
        thread = BoardThread(association_id=aid, author_account_id=actor.account_id, title=clean["title"],
                             created_at=now, last_post_at=now)
        s.add(thread)
        s.flush()
        s.add(BoardPost(thread_id=thread.id, author_account_id=actor.account_id, body=clean["body"], created_at=now))
        return thread.id


def reply(actor: Actor, thread_id: object, body: object, now: datetime | None = None) -> int:
    """A reply at the end of a thread, which moves the thread to the top; returns the post id.

    Only while the opening post is visible: a reply would otherwise bring a thread an officer hid (or its
    author deleted) back to the top of everyone's list."""
    now = now or utcnow()
    with session() as s:
        thread = _thread_for(s, actor, thread_id)
        text = _body(body)
        _check_rate(s, actor, now)
        opening_id = _opening_ids(s, [thread.id]).get(thread.id)
        if opening_id is not None:
            lock_row(s, BoardPost, opening_id)  # a hide or delete of the opening post waits for this reply
        opener = s.get(BoardPost, opening_id) if opening_id is not None else None
        state = _state(opener) if opener is not None else "deleted"
        if state != "visible":
            raise ServiceError("board.error.thread_deleted" if state == "deleted" else "board.error.thread_hidden")
        post = BoardPost(thread_id=thread.id, author_account_id=actor.account_id, body=text, created_at=now)
        s.add(post)
        thread.last_post_at = now
        s.add(thread)
        s.flush()
        return post.id


def edit_post(actor: Actor, post_id: object, body: object, title: object = None) -> None:
    """The author changes their own visible post (and the title, for a thread's opening post)."""
    with session() as s:
        post, thread = _post_for(s, actor, post_id)
        if post.author_account_id != actor.account_id:
            raise Denied()
        if post.deleted_at is not None:
            raise ServiceError("board.error.deleted")
        if post.hidden_at is not None:
            # Editing would let a hidden text come back unreviewed.
            raise ServiceError("board.error.hidden")
        if _open_reports(s, post.id):
            # The moderators would read new text beside a complaint about the old one.
            raise ServiceError("board.error.under_review")
        text = _body(body)
        if title is not None and _is_opening(s, post):
            thread.title = _title(title)
            s.add(thread)
        post.body = text
        post.edited_at = utcnow()
        s.add(post)


def delete_post(actor: Actor, post_id: object) -> None:
    """The author removes their own post; its text is erased and others see 「削除されました」."""
    with session() as s:
        post, thread = _post_for(s, actor, post_id)
        if post.author_account_id != actor.account_id:
            raise Denied()
        if post.deleted_at is not None:
            raise ServiceError("board.error.deleted")
        now = utcnow()
        post.body = ""
        post.deleted_at = now
        s.add(post)
        if _is_opening(s, post):
            thread.title = ""
            s.add(thread)
        _close_reports(s, post.id, actor, "deleted", now)


def report_post(actor: Actor, post_id: object, reason: object) -> None:
    """Ask the moderators to look at someone else's post; once per person per post while it is open."""
    with session() as s:
        post, _thread = _post_for(s, actor, post_id)
        text = _reason(reason)
        if post.author_account_id == actor.account_id:
            raise ServiceError("board.error.own_post")
        if post.deleted_at is not None:
            raise ServiceError("board.error.deleted")
        if post.hidden_at is not None:
            raise ServiceError("board.error.already_hidden")
        earlier = s.exec(select(BoardReport).where(BoardReport.post_id == post.id,
                                                    BoardReport.reporter_account_id == actor.account_id)).first()
        if earlier is not None and earlier.resolved_at is None:
            raise ServiceError("board.error.reported_twice")
        if earlier is not None:
            # Closed before (dismissed, or hidden and shown again): one row per reporter and post (uq_report),
            # so that report is opened again with what they write now.
            earlier.reason, earlier.created_at = text, utcnow()
            earlier.resolved_at, earlier.resolved_by, earlier.resolution = None, None, ""
            s.add(earlier)
        else:
            s.add(BoardReport(post_id=post.id, reporter_account_id=actor.account_id, reason=text))
        try:
            s.flush()
        except IntegrityError:  # the same report sent twice at the same moment (a double tap)
            raise ServiceError("board.error.reported_twice") from None


def _moderated_post(s: Session, actor: Actor, post_id: object) -> tuple[BoardPost, BoardThread]:
    post, thread = _post_for(s, actor, post_id)
    if not may_moderate(actor, thread.association_id):
        raise Denied()
    if post.deleted_at is not None:
        raise ServiceError("board.error.deleted")
    return post, thread


def _open_reports(s: Session, post_id: int) -> list[BoardReport]:
    return list(s.exec(select(BoardReport).where(BoardReport.post_id == post_id,
                                                 BoardReport.resolved_at.is_(None))).all())


def _close_reports(s: Session, post_id: int, actor: Actor, resolution: str, now: datetime) -> list[BoardReport]:
    closed = _open_reports(s, post_id)
    for r in closed:
        r.resolved_at, r.resolved_by, r.resolution = now, actor.account_id, resolution
        s.add(r)
    return closed


def _audit(s: Session, actor: Actor, action: str, thread: BoardThread, post: BoardPost,
           subjects: list[int | None]) -> None:
    """A moderator's decision, on the access log of each person it concerns (the post id, never its text)."""
    audit.record(s, actor, action, association_id=thread.association_id,
                 subjects=[i for i in subjects if i is not None], detail=f"post {post.id}")


def _hide(s: Session, actor: Actor, post: BoardPost, thread: BoardThread, reason: str, now: datetime) -> None:
    if post.hidden_at is not None:
        raise ServiceError("board.error.already_hidden")
    post.hidden_at, post.hidden_by, post.hidden_reason = now, actor.account_id, reason
    s.add(post)
    _close_reports(s, post.id, actor, "hide", now)
    _audit(s, actor, "board.hide", thread, post, [post.author_account_id])


def hide_post(actor: Actor, post_id: object, reason: object) -> None:
    """A moderator hides a post; its author sees the reason, everyone else 「役員により非表示」."""
    with session() as s:
        post, thread = _moderated_post(s, actor, post_id)
        _hide(s, actor, post, thread, _reason(reason, "hide_reason"), utcnow())


def unhide_post(actor: Actor, post_id: object) -> None:
    """A moderator shows a hidden post again. Who hid it and who showed it again stay on the audit trail (and
    the author's access log); the reason, meant for the author while the post was hidden, goes."""
    with session() as s:
        post, thread = _moderated_post(s, actor, post_id)
        if post.hidden_at is None:
            raise ServiceError("board.error.not_hidden")
        post.hidden_at, post.hidden_by, post.hidden_reason = None, None, ""
        s.add(post)
        _audit(s, actor, "board.unhide", thread, post, [post.author_account_id])


def resolve_reports(actor: Actor, post_id: object, action: object, reason: object = "") -> None:
    """Work through the queue: hide the reported post (with a reason for its author) or dismiss the reports."""
    now = utcnow()
    with session() as s:
        post, thread = _moderated_post(s, actor, post_id)
        choice = validate.choice(action, "action", RESOLUTIONS)
        if choice == "hide":
            _hide(s, actor, post, thread, _reason(reason, "hide_reason"), now)
            return
        closed = _close_reports(s, post.id, actor, "dismiss", now)
        if not closed:
            raise ServiceError("board.error.no_reports")
        # On the reporters' logs: their reports were decided. Not on the author's, who is never told that
        # the post was reported.
        _audit(s, actor, "board.dismiss", thread, post, [r.reporter_account_id for r in closed])


def report_queue(actor: Actor, association_id: object, page: object = 1,
                 per_page: int = REPORTS_PER_PAGE) -> ReportQueue:
    """Posts with open reports, the most reported first, each with every open report's reason."""
    if not actor.authenticated or not actor.memberships:
        raise Denied()
    aid = validate.ident(association_id, "association_id")
    if not may_moderate(actor, aid):
        raise Denied()
    number = _page_number(page)
    with session() as s:
        base = (
            select(BoardReport.post_id, func.count().label("n"), func.min(BoardReport.created_at).label("first"))
            .join(BoardPost, BoardPost.id == BoardReport.post_id)
            .join(BoardThread, BoardThread.id == BoardPost.thread_id)
            .where(BoardThread.association_id == aid, BoardReport.resolved_at.is_(None),
                   BoardPost.deleted_at.is_(None))
            .group_by(BoardReport.post_id)
        )
        total = s.exec(select(func.count()).select_from(base.subquery())).one()
        pages = _pages(total, per_page)
        number = min(number, pages)
        sub = base.subquery()
        post_ids = list(s.exec(
            select(sub.c.post_id).order_by(sub.c.n.desc(), sub.c.first, sub.c.post_id)
            .limit(per_page).offset((number - 1) * per_page)
        ).all()) if total else []
        posts = {p.id: (p, t, name) for p, t, name in s.exec(
            select(BoardPost, BoardThread, Account.display_name)
            .join(BoardThread, BoardThread.id == BoardPost.thread_id)
            .join(Account, Account.id == BoardPost.author_account_id, isouter=True)
            .where(BoardPost.id.in_(post_ids or [0]))
        ).all()}
        lines: dict[int, list[ReportLine]] = {pid: [] for pid in post_ids}
        reporters: list[int] = []
        for r, name in s.exec(
            select(BoardReport, Account.display_name)
            .join(Account, Account.id == BoardReport.reporter_account_id, isouter=True)
            .where(BoardReport.post_id.in_(post_ids or [0]), BoardReport.resolved_at.is_(None))
            .order_by(BoardReport.created_at, BoardReport.id)
        ).all():
            lines[r.post_id].append(ReportLine(_name(name), r.reason, r.created_at))
            if r.reporter_account_id is not None:
                reporters.append(r.reporter_account_id)
        if reporters:  # what each reporter wrote is theirs: they see on their access log that it was read
            audit.record(s, actor, "board.reports", association_id=aid, subjects=reporters,
                         count=sum(map(len, lines.values())))
        items = []
        for pid in post_ids:
            p, t, name = posts[pid]
            items.append(ReportedPost(post_id=p.id, thread_id=t.id, thread_title=t.title, author=_name(name),
                                      body=p.body, paragraphs=render(p.body), hidden=p.hidden_at is not None,
                                      reports=tuple(lines[pid])))
        return ReportQueue(tuple(items), total, number, pages)


def open_report_count(actor: Actor, association_id: int) -> int:
    """How many posts wait in the reports queue (0 for anyone who may not moderate)."""
    if not isinstance(association_id, int) or not may_moderate(actor, association_id):
        return 0
    with session() as s:
        return s.exec(
            select(func.count(func.distinct(BoardReport.post_id)))
            .join(BoardPost, BoardPost.id == BoardReport.post_id)
            .join(BoardThread, BoardThread.id == BoardPost.thread_id)
            .where(BoardThread.association_id == association_id, BoardReport.resolved_at.is_(None),
                   BoardPost.deleted_at.is_(None))
        ).one()
