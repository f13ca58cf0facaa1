"""Membership: join requests with consent, approval into a household, invite codes, leaving."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, bindparam, delete, func, or_, update
from sqlmodel import Session, select

from chiiki import routes
from chiiki import settings as settings_module
from chiiki.i18n import tr
from chiiki.models import Account, Association, Han, Household, InviteCode, Membership, OfficerRole, utcnow
from chiiki.services import audit, mail, validate
from chiiki.services.accounts import refresh_paper_only
from chiiki.services.associations import (
    association_or_404,
    ensure_manager_remains,
    first_manager_gap,
    han_of,
    in_scope,
    lock_officers,
    page_args,
    require,
    require_scope,
)
from chiiki.services.db import lock_row, session
from chiiki.services.officers import may_change
from chiiki.services.roster import clean_address, fold, lock_roster
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import (
    ALL_HAN, AUTHENTICATED, JOIN, MANAGE_MEMBERS, MEMBER, VIEW_MEMBERS, Actor, Assoc, can, han_scope,
)

# Bump when the wording of what officers will see changes; each membership records the version agreed to.
CONSENT_VERSION = "2026-1"
# No 0/O or 1/I/L: codes are read aloud and typed by hand.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
MAX_INVITE_DAYS = 90
MAX_INVITE_USES = 500


def _normalise_code(code: object) -> str:
    if not isinstance(code, str):
        return ""
    cleaned = unicodedata.normalize("NFKC", code).upper().replace("-", "").replace(" ", "")
    return cleaned if len(cleaned) == CODE_LENGTH and all(c in _CODE_ALPHABET for c in cleaned) else ""


def hash_code(code: str) -> str:
    return hashlib.sha256(("invite:" + code).encode()).hexdigest()


def _open_membership(s: Session, account_id: int) -> Membership | None:
    """A person belongs to (or asks to join) one association at a time."""
    return s.exec(select(Membership).where(Membership.account_id == account_id,
                                           Membership.status.in_(("active", "pending")))).first()


def _consent(consent: object, version: object) -> None:
    if consent is not True or version != CONSENT_VERSION:
        raise ValidationErrors({"consent": "membership.error.consent"})


# --------------------------------------------------------------------------- the resident's side


@dataclass(frozen=True)
class MyMembership:
    status: str  # none | pending | active | rejected
    association_id: int
    association_name: str
    requested_at: datetime | None
    decision_note: str  # the reason given when the last request was rejected


def my_membership(actor: Actor) -> MyMembership:
    require(actor, AUTHENTICATED)
    with session() as s:
        rows = s.exec(select(Membership, Association.name).join(Association, Association.id == Membership.association_id)
                      .where(Membership.account_id == actor.account_id)
                      .order_by(Membership.requested_at.desc(), Membership.id.desc())).all()
        for m, name in rows:
            if m.status in ("active", "pending"):
                return MyMembership(m.status, m.association_id, name, m.requested_at, "")
        if rows and rows[0][0].status == "rejected":
            m, name = rows[0]
            return MyMembership("rejected", m.association_id, name, m.requested_at, m.decision_note)
        return MyMembership("none", 0, "", None, "")


def request_join(actor: Actor, association_id: object, consent: object, consent_version: object,
                 message: object = "") -> int:
    """Ask to join, after agreeing to what officers will see; an officer decides later."""
    require(actor, AUTHENTICATED)
    note = validate.text(message, "message", max_len=500, required=False, multiline=True)
    with session() as s:
        a = association_or_404(s, association_id)
        if not a.active:
            raise NotFound()
        lock_row(s, Account, actor.account_id)  # two requests (two tabs) at once: one open membership
        if _open_membership(s, actor.account_id) is not None or not can(actor, JOIN, Assoc(a.id)):
            raise ServiceError("membership.error.already")
        _consent(consent, consent_version)
        now = utcnow()
        m = Membership(account_id=actor.account_id, association_id=a.id, status="pending",
                       consent_version=CONSENT_VERSION, consented_at=now, message=note, requested_at=now)
        s.add(m)
        s.flush()
        return m.id


def cancel_request(actor: Actor) -> None:
    """Withdraw one's own request while no officer has decided it."""
    require(actor, AUTHENTICATED)
    with session() as s:
        # As approve and reject take it (_pending_in_scope): a decision at the same moment comes first or after,
        # never between this check and the delete (which deleted a membership just approved).
        lock_row(s, Account, actor.account_id)
        m = _open_membership(s, actor.account_id)
        if m is None or m.status != "pending":
            # Approved (active) or declined (the latest is rejected) since the page showed it: say so.
            latest = m or s.exec(select(Membership).where(Membership.account_id == actor.account_id)
                                 .order_by(Membership.requested_at.desc(), Membership.id.desc())).first()
            if latest is not None and latest.status in ("active", "rejected"):
                raise ServiceError("membership.error.cancel_decided")
            raise NotFound()
        gone = s.execute(delete(Membership).where(Membership.id == m.id, Membership.status == "pending")
                         .execution_options(synchronize_session=False)).rowcount
        if gone != 1:
            raise ServiceError("membership.error.cancel_decided")


def leave(actor: Actor, association_id: object) -> None:
    """A member leaves; their roles end with it. The last manager must hand over first."""
    with session() as s:
        a = association_or_404(s, association_id)
        require(actor, MEMBER, Assoc(a.id))
        m = s.get(Membership, actor.membership(a.id).membership_id)
        end_in(s, m, utcnow())


def end_in(s: Session, m: Membership, now: datetime) -> None:
    """End a membership and its roles inside the caller's transaction (leaving, an officer ending it, deleting the
    account): refused when it would leave the association without a manager sooner than before, looking ahead to
    roles that start or end later."""
    gap = first_manager_gap(s, m.association_id, now)
    for r in s.exec(select(OfficerRole).where(OfficerRole.membership_id == m.id,
                                              OfficerRole.revoked_at.is_(None))).all():
        r.revoked_at = now
        s.add(r)
    m.status, m.left_at = "left", now
    s.add(m)
    ensure_manager_remains(s, m.association_id, gap, now)
    if m.household_id:
        refresh_paper_only(s, m.household_id)


def end_membership(actor: Actor, membership_id: object) -> None:
    """An officer records that a member has moved away or left (within the officer's han when scoped)."""
    with session() as s:
        m = s.get(Membership, validate.ident(membership_id, "membership_id"))
        if m is None:
            raise NotFound()
        scope = require_scope(actor, MANAGE_MEMBERS, m.association_id)
        han_id = s.get(Household, m.household_id).han_id if m.household_id else None
        if m.status != "active" or not in_scope(scope, han_id):
            raise Denied()
        now = utcnow()
        # Ending a membership ends its roles: only for someone who may change each of them (officers.may_change),
        # or a 班長 could remove the 会長 of their han, and with them powers no one left could grant again. Read
        # under the officers' lock, so a role given meanwhile is seen.
        lock_officers(s, m.association_id)
        for role in s.exec(select(OfficerRole).where(
                OfficerRole.membership_id == m.id, OfficerRole.revoked_at.is_(None),
                or_(OfficerRole.valid_until.is_(None), OfficerRole.valid_until > now))).all():
            try:
                may_change(actor, role)
            except Denied:
                raise ServiceError("members.error.end_officer") from None
        end_in(s, m, now)
        audit.record(s, actor, "membership.end", association_id=m.association_id, subjects=[m.account_id])


# --------------------------------------------------------------------------- officers: join requests


@dataclass(frozen=True)
class JoinRequest:
    """An applicant as the deciding officer sees them (audited when listed)."""

    membership_id: int
    name: str
    kana: str
    address: str
    message: str
    requested_at: datetime


def may_decide(actor: Actor, association_id: int) -> bool:
    """Whether the actor sees and decides the association's join requests: deciding means seeing the applicant
    and choosing among the roster's households, so manage_members and view_members (privacy rule 1) over the
    whole association, as applicants have no han yet. A 班長 decides none."""
    return all(han_scope(actor, p, association_id) == ALL_HAN for p in (MANAGE_MEMBERS, VIEW_MEMBERS))


# The navigation's badge of requests waiting (chiiki.state._badges, on every page change): one count on
# ix_membership_assoc_status, prepared once.
PENDING_COUNT = select(func.count()).select_from(Membership).where(
    Membership.association_id == bindparam("pending_association", type_=Integer), Membership.status == "pending")


def pending_params(actor: Actor, association_id: int) -> dict:
    """Parameters of PENDING_COUNT: the association where the actor decides requests, else none (id -1)."""
    return {"pending_association": association_id if may_decide(actor, association_id) else -1}


def pending_requests(actor: Actor, association_id: object, limit: object = 20,
                     offset: object = 0) -> tuple[list[JoinRequest], int]:
    """Applicants waiting for a decision, with their name and address, for those who decide them (may_decide)."""
    lim, off = page_args(limit, offset)
    with session() as s:
        a = association_or_404(s, association_id)
        if not may_decide(actor, a.id):
            raise Denied()
        cond = (Membership.association_id == a.id, Membership.status == "pending")
        total = s.exec(select(func.count(Membership.id)).where(*cond)).one()
        rows = s.exec(select(Membership, Account).join(Account, Account.id == Membership.account_id).where(*cond)
                      .order_by(Membership.requested_at, Membership.id).offset(off).limit(lim)).all()
        if rows:
            audit.record(s, actor, "membership.review", association_id=a.id, subjects=[acc.id for _m, acc in rows])
        return [JoinRequest(m.id, acc.name, acc.kana, acc.address, m.message, m.requested_at) for m, acc in rows], total


@dataclass(frozen=True)
class HouseholdOption:
    id: int
    address: str
    han_name: str
    paper_only: bool


def household_options(actor: Actor, association_id: object, query: object = "", limit: int = 20
                      ) -> list[HouseholdOption]:
    """Households (address and han only) a manager may attach an applicant to; the lookup is audited."""
    q = validate.text(query, "query", max_len=200, required=False)
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, MANAGE_MEMBERS, a.id)
        # Addresses are personal data: only where the officer may also see the members (privacy rule 1).
        view = han_scope(actor, VIEW_MEMBERS, a.id)
        if not view:
            return []
        stmt = (select(Household.id, Household.address, Han.name, Household.paper_only)
                .join(Han, Han.id == Household.han_id, isouter=True)
                .where(Household.association_id == a.id, Household.removed_at.is_(None)))
        for allowed in (scope, view):
            if allowed != ALL_HAN:
                stmt = stmt.where(Household.han_id.in_(allowed))
        if q:
            # The roster stores addresses NFKC-normalised ("１丁目" as "1丁目"); so is the query.
            stmt = stmt.where(Household.address.contains(unicodedata.normalize("NFKC", q)))
        rows = s.exec(stmt.order_by(Household.paper_only.desc(), Household.address, Household.id)
                      .limit(max(1, min(limit, 50)))).all()
        if rows:
            # The addresses shown are their members' too: each member is a subject, so it shows on their page.
            members = s.exec(select(Membership.account_id).where(
                Membership.household_id.in_([r[0] for r in rows]), Membership.status == "active")).all()
            audit.record(s, actor, "household.lookup", association_id=a.id, subjects=members,
                         household_ids=[r[0] for r in rows], count=len(rows))
        return [HouseholdOption(hid, addr, han or "", paper) for hid, addr, han, paper in rows]


def _pending_in_scope(s: Session, actor: Actor, membership_id: object) -> Membership:
    mid = validate.ident(membership_id, "membership_id")
    m = s.get(Membership, mid)
    if m is None:
        raise NotFound()
    if not may_decide(actor, m.association_id):
        raise Denied()
    # The applicant's lock, as request_join, cancel_request and join_with_code take it, then the request read
    # again: a code join or a withdrawal at the same moment either comes first (and the decision sees it) or
    # waits and sees the decision. Without it a code join moved the person out of the household just approved.
    lock_row(s, Account, m.account_id)
    m = s.get(Membership, mid, populate_existing=True)
    if m is None:
        raise ServiceError("membership.error.withdrawn")
    if m.status != "pending":
        raise ServiceError("membership.error.decided")
    return m


def _new_household(s: Session, association_id: int, address: object, han_id: object) -> Household:
    errors: dict = {}
    addr = han = None
    try:
        addr = clean_address(address)
    except ServiceError as e:
        errors["address"] = e
    try:
        han = han_of(s, association_id, han_id)
        if han is None:
            errors["han_id"] = "error.required"
    except Denied:
        errors["han_id"] = "error.invalid"
    except ServiceError as e:
        errors["han_id"] = e
    if errors:
        raise ValidationErrors(errors)
    found = _same_address(s, association_id, addr)
    if found:
        # The roster already has a household at this address (written however). The applicant's own paper-only
        # household in the chosen han is the one they join (an officer without view_members cannot look it up);
        # anything else (another family's household, another han) is for the officer to choose explicitly.
        own = [hh for hh in found if hh.han_id == han.id and hh.paper_only]
        if not own:
            raise ValidationErrors({"address": "roster.error.address_taken"})
        return own[0]
    return _add_household(s, association_id, han.id, addr)


def _existing_household(s: Session, association_id: int, household_id: object, scope=ALL_HAN) -> Household:
    hh = s.get(Household, validate.ident(household_id, "household_id"))
    if hh is None or hh.association_id != association_id or hh.removed_at is not None or not in_scope(scope, hh.han_id):
        raise Denied()
    return hh


def _decide(s: Session, m: Membership, **values) -> None:
    """Decide a request only while it is still pending: two officers deciding it at once (or one tab twice)
    get one decision and a message, not two (the second approval moved the person to another household)."""
    done = s.execute(update(Membership).where(Membership.id == m.id, Membership.status == "pending")
                     .values(**values).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise ServiceError("membership.error.decided")
    s.refresh(m)


def approve(actor: Actor, membership_id: object, choice: dict) -> None:
    """Accept an applicant into an existing household (e.g. their paper-only one) or a new one."""
    if not isinstance(choice, dict):
        raise ServiceError("error.invalid")
    now = utcnow()
    with session() as s:
        m = _pending_in_scope(s, actor, membership_id)
        # Another active membership: not this request itself, which another officer may have approved since it
        # was read (then _decide says so).
        if s.exec(select(Membership.id).where(Membership.account_id == m.account_id, Membership.status == "active",
                                              Membership.id != m.id)).first() is not None:
            raise ServiceError("membership.error.member_elsewhere")
        if choice.get("household_id") not in (None, "", 0, "0"):
            hh = _existing_household(s, m.association_id, choice.get("household_id"))
        else:
            hh = _new_household(s, m.association_id, choice.get("address"), choice.get("han_id"))
        _decide(s, m, status="active", household_id=hh.id, decided_at=now, decided_by=actor.account_id)
        refresh_paper_only(s, hh.id)
        _mail_decision(s, m, "approved")
        audit.record(s, actor, "membership.decide", association_id=m.association_id, subjects=[m.account_id],
                     household_ids=[hh.id], detail="approve")


def _mail_decision(s: Session, m: Membership, outcome: str) -> None:
    """Tell the applicant the decision by mail, when they take the association's mail (Account.email_circulars,
    as circulars and surveys ask): the association's name and a link, nothing of anyone else (no officer, no
    household, not even the reason, which the join page shows after logging in)."""
    acc = s.get(Account, m.account_id)
    if not acc.email or not acc.email_circulars or acc.deleted_at is not None:
        return
    name = s.get(Association, m.association_id).name
    lang = "en" if acc.locale == "en" else "ja"
    url = settings_module.settings.public_url.rstrip("/") + (routes.ASSOCIATION if outcome == "approved" else routes.JOIN)
    key = f"membership.mail.{outcome}"
    mail.enqueue(s, acc.email, tr(lang, key + "_subject", association=name),
                 tr(lang, key + "_body", association=name, url=url), "membership")


def reject(actor: Actor, membership_id: object, reason: object = "") -> None:
    note = validate.text(reason, "reason", max_len=500, required=False, multiline=True)
    with session() as s:
        m = _pending_in_scope(s, actor, membership_id)
        _decide(s, m, status="rejected", decided_at=utcnow(), decided_by=actor.account_id, decision_note=note)
        _mail_decision(s, m, "rejected")
        audit.record(s, actor, "membership.decide", association_id=m.association_id, subjects=[m.account_id],
                     detail="reject")


# --------------------------------------------------------------------------- invite codes


@dataclass(frozen=True)
class NewInvite:
    """Shown once to the officer who made it: only the hash is stored."""

    code: str
    link: str
    expires_at: datetime


@dataclass(frozen=True)
class InviteView:
    id: int
    han_name: str
    household_address: str
    expires_at: datetime
    uses: int
    max_uses: int
    state: str  # open | used | expired | revoked


def format_code(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def create_invite(actor: Actor, association_id: object, data: dict) -> NewInvite:
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    now = utcnow()
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, MANAGE_MEMBERS, a.id)
        errors: dict = {}
        days = uses = None
        try:
            days = validate.integer(data.get("days"), "days", lo=1, hi=MAX_INVITE_DAYS)
        except ServiceError as e:
            errors["days"] = e
        try:
            uses = validate.integer(data.get("max_uses"), "max_uses", lo=1, hi=MAX_INVITE_USES)
        except ServiceError as e:
            errors["max_uses"] = e
        if errors:
            raise ValidationErrors(errors)
        hh = None
        if data.get("household_id") not in (None, "", 0, "0"):
            hh = _existing_household(s, a.id, data.get("household_id"), scope)
        han = han_of(s, a.id, data.get("han_id"))
        han_id = hh.han_id if hh is not None else (han.id if han else None)
        if hh is not None and han is not None and hh.han_id != han.id:
            raise ValidationErrors({"han_id": "membership.error.han_mismatch"})
        if not in_scope(scope, han_id):
            raise ServiceError("officer.error.scope", "han_id")
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_LENGTH))
        expires = now + timedelta(days=days)
        s.add(InviteCode(association_id=a.id, code_hash=hash_code(code), household_id=hh.id if hh else None,
                         han_id=han_id, expires_at=expires, max_uses=uses, created_by=actor.account_id,
                         created_at=now))
        pretty = format_code(code)
        link = settings_module.settings.public_url.rstrip("/") + "/join?code=" + pretty
        return NewInvite(pretty, link, expires)


def _invite_state(i: InviteCode, now: datetime) -> str:
    if i.revoked_at is not None:
        return "revoked"
    if i.uses >= i.max_uses:
        return "used"
    return "expired" if i.expires_at <= now else "open"


def list_invites(actor: Actor, association_id: object, limit: object = 20, offset: object = 0
                 ) -> tuple[list[InviteView], int]:
    lim, off = page_args(limit, offset)
    now = utcnow()
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, MANAGE_MEMBERS, a.id)
        cond = [InviteCode.association_id == a.id]
        if scope != ALL_HAN:
            cond.append(InviteCode.han_id.in_(scope))
        total = s.exec(select(func.count(InviteCode.id)).where(*cond)).one()
        rows = s.exec(select(InviteCode, Han.name, Household.address, Household.han_id)
                      .join(Han, Han.id == InviteCode.han_id, isouter=True)
                      .join(Household, Household.id == InviteCode.household_id, isouter=True)
                      .where(*cond).order_by(InviteCode.created_at.desc(), InviteCode.id.desc())
                      .offset(off).limit(lim)).all()
        # A code made for a household shows its address: only where the officer may see that household's
        # members (privacy rule 1), and audited like any other look at it.
        view = han_scope(actor, VIEW_MEMBERS, a.id)
        shown = {i.household_id for i, _han, addr, hh_han in rows if addr and in_scope(view, hh_han)}
        if shown:
            members = s.exec(select(Membership.account_id).where(
                Membership.household_id.in_(sorted(shown)), Membership.status == "active")).all()
            audit.record(s, actor, "household.lookup", association_id=a.id, subjects=members,
                         household_ids=sorted(shown), count=len(shown), detail="invites")
        return [InviteView(i.id, han or "", addr if i.household_id in shown else "", i.expires_at, i.uses,
                           i.max_uses, _invite_state(i, now)) for i, han, addr, _hh_han in rows], total


def revoke_invite(actor: Actor, invite_id: object) -> None:
    with session() as s:
        inv = s.get(InviteCode, validate.ident(invite_id, "invite_id"))
        if inv is None:
            raise NotFound()
        scope = require_scope(actor, MANAGE_MEMBERS, inv.association_id)
        if not in_scope(scope, inv.han_id):
            raise Denied()
        if inv.revoked_at is None:
            inv.revoked_at = utcnow()
            s.add(inv)


@dataclass(frozen=True)
class InvitePreview:
    association_id: int
    association_name: str
    han_name: str
    expires_at: datetime


def _usable_invite(s: Session, code: object, now: datetime) -> InviteCode:
    cleaned = _normalise_code(code)
    inv = s.exec(select(InviteCode).where(InviteCode.code_hash == hash_code(cleaned))).first() if cleaned else None
    # An association the city has closed takes no one, by code or by request (request_join).
    if inv is None or inv.revoked_at is not None or not s.get(Association, inv.association_id).active:
        raise ValidationErrors({"code": "membership.error.code_invalid"})
    if inv.expires_at <= now:
        raise ValidationErrors({"code": "membership.error.code_expired"})
    if inv.uses >= inv.max_uses:
        raise ValidationErrors({"code": "membership.error.code_used"})
    return inv


def check_invite(actor: Actor, code: object) -> InvitePreview:
    """Which association a code leads to, so the resident knows what they agree to."""
    require(actor, AUTHENTICATED)
    with session() as s:
        inv = _usable_invite(s, code, utcnow())
        a = s.get(Association, inv.association_id)
        han = s.get(Han, inv.han_id) if inv.han_id else None
        return InvitePreview(a.id, a.name, han.name if han else "", inv.expires_at)


@dataclass(frozen=True)
class CodeJoin:
    membership_id: int
    joined: bool  # False: the code made a request an officer decides (see _invite_household)
    # Why an officer decides: "household" (the roster has one at this address) or "han" (a code for no han).
    waits_for: str = ""


def join_with_code(actor: Actor, code: object, consent: object, consent_version: object) -> CodeJoin:
    """Join with a valid code: at once into the household the code names, or into a new household at the
    resident's address in the code's han. When the roster already has a household at that address, the code
    becomes a request for an officer to decide: whoever holds a han's code could otherwise type a neighbour's
    address and join that family's household (its circulars, its answers, its paper copy). So does a code for
    the whole association (no han): a household of its own would be in no han."""
    require(actor, AUTHENTICATED)
    now = utcnow()
    with session() as s:
        inv = _usable_invite(s, code, now)
        _consent(consent, consent_version)
        lock_row(s, Account, actor.account_id)  # a code used in two tabs at once: one membership
        current = _open_membership(s, actor.account_id)
        if current is not None and (current.status == "active" or current.association_id != inv.association_id):
            raise ServiceError("membership.error.already")
        # Claim one use in the database, so two people can never both spend the last one.
        claimed = s.exec(update(InviteCode).where(InviteCode.id == inv.id, InviteCode.uses < InviteCode.max_uses)
                         .values(uses=InviteCode.uses + 1)).rowcount
        if claimed != 1:
            raise ValidationErrors({"code": "membership.error.code_used"})
        acc = s.get(Account, actor.account_id)
        hh = _invite_household(s, inv, acc.address)
        m = current or Membership(account_id=acc.id, association_id=inv.association_id, requested_at=now)
        m.consent_version, m.consented_at = CONSENT_VERSION, now
        if hh is None:
            m.status, m.requested_at = "pending", now
            s.add(m)
            s.flush()
            return CodeJoin(m.id, False, "han" if inv.han_id is None else "household")
        m.status, m.household_id, m.decided_at, m.decided_by = "active", hh.id, now, inv.created_by
        s.add(m)
        s.flush()
        refresh_paper_only(s, hh.id)
        return CodeJoin(m.id, True)


def _invite_household(s: Session, inv: InviteCode, address: str) -> Household | None:
    """The household a code joins: the one it was made for, or a new one at the resident's address in the
    code's han; None when the roster already has a household there (written however: "１丁目２－３" is
    "1丁目2-3"), or when the code is for no han. A typed address proves nothing, so joining someone's household
    is for an officer to confirm (approve() joins the resident's own paper household at that address without a
    twin); a han's code never joins a household of another han."""
    if inv.household_id:
        hh = s.get(Household, inv.household_id)
        if hh is not None and hh.removed_at is None:
            return hh
    if inv.han_id is None:
        # A code for the whole association: a household made here would be in no han, on no circular route and
        # seen by no 班長. An officer places the resident in a han when approving, as for any request.
        return None
    if _same_address(s, inv.association_id, address):
        # Also when that household is in another han than a han's code is for: the same answer (a request) as
        # for one in the code's han. A refusal of its own told whoever holds the code, by typing addresses as
        # their own, which addresses have a household on the roster, and cost them nothing (no use spent).
        return None
    try:
        addr = clean_address(address)
    except ServiceError:
        addr = address[:200]
    return _add_household(s, inv.association_id, inv.han_id, addr)


def _same_address(s: Session, association_id: int, address: str) -> list[Household]:
    """The association's households at this address, oldest first (addresses compared as roster.fold does). Read
    under the roster's lock, as every caller may go on to add a household (_add_household): one added to the
    roster meanwhile is seen, and the new one's route position is no other's."""
    lock_roster(s, association_id)
    key = fold(address)
    if not key:
        return []
    rows = s.exec(select(Household.id, Household.address).where(
        Household.association_id == association_id, Household.removed_at.is_(None)).order_by(Household.id)).all()
    ids = [hid for hid, addr in rows if fold(addr) == key]
    return [s.get(Household, hid) for hid in ids]


def _add_household(s: Session, association_id: int, han_id: int | None, address: str) -> Household:
    """A new household at the end of its han's route."""
    last = s.exec(select(func.coalesce(func.max(Household.route_position), -1))
                  .where(Household.association_id == association_id, Household.han_id == han_id)).one()
    hh = Household(association_id=association_id, han_id=han_id, route_position=last + 1, address=address)
    s.add(hh)
    s.flush()
    return hh
