"""The single access policy: can(actor, action, target) -> bool, fail closed. Every service asks here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

# Permissions an association may delegate to an officer role (DESIGN.md, Permissions).
VIEW_MEMBERS = "view_members"
MANAGE_MEMBERS = "manage_members"
SEND_CIRCULARS = "send_circulars"
RUN_SURVEYS = "run_surveys"
MODERATE_BOARD = "moderate_board"
EXPORT = "export"
OFFICER_PERMISSIONS: tuple[str, ...] = (
    VIEW_MEMBERS, MANAGE_MEMBERS, SEND_CIRCULARS, RUN_SURVEYS, MODERATE_BOARD, EXPORT,
)
CITY_ADMIN = "city_admin"

# City staff see aggregates only (privacy rule 1): a figure about fewer than this many people or households
# says something about those few (whether one household answered a safety check, uses the app, read a
# notice). The dashboard leaves such groups out of every figure, the notice preview says "fewer than", and the
# association list shows no member or digital counts of an association this small.
SMALL_GROUP = 5

# Actions that are not delegated permissions.
AUTHENTICATED = "authenticated"  # any logged-in person: own profile, own data, find an association
JOIN = "association.join"  # ask to join / use an invite: logged in and not already in it
MEMBER = "association.member"  # active member: circulars, surveys, board, member count, officers
INQUIRY_SEND = "inquiry.send"  # residents and visitors alike
INQUIRY_ROUTE = "inquiry.route"  # city staff of the department, or any city admin
ACTIONS: tuple[str, ...] = (
    AUTHENTICATED, JOIN, MEMBER, INQUIRY_SEND, INQUIRY_ROUTE, CITY_ADMIN, *OFFICER_PERMISSIONS,
)


@dataclass(frozen=True)
class MemberOf:
    membership_id: int
    association_id: int
    household_id: int | None
    han_id: int | None


@dataclass(frozen=True)
class RoleGrant:
    role_id: int
    association_id: int
    title: str
    permissions: frozenset[str]
    han_id: int | None  # None: the whole association


@dataclass(frozen=True)
class Actor:
    """Who is asking, as loaded from the database for one request; never sent to a browser."""

    account_id: int | None = None
    display_name: str = ""
    is_city_staff: bool = False
    department_id: int | None = None
    memberships: tuple[MemberOf, ...] = ()
    roles: tuple[RoleGrant, ...] = ()
    pending: tuple[int, ...] = field(default=())  # association ids with a pending request

    @property
    def authenticated(self) -> bool:
        return self.account_id is not None

    def membership(self, association_id: int) -> MemberOf | None:
        for m in self.memberships:
            if m.association_id == association_id:
                return m
        return None

    def roles_in(self, association_id: int) -> list[RoleGrant]:
        return [r for r in self.roles if r.association_id == association_id]

    def title_in(self, association_id: int) -> str:
        return TITLE_SEP.join(r.title for r in self.roles_in(association_id))


# Between the titles of someone who holds several roles in one association (Actor.title_in, as the audit trail
# stores who acted).
TITLE_SEP = "・"

ANONYMOUS = Actor()


@dataclass(frozen=True)
class Assoc:
    """An association, or one han of it. han_id=None asks for the whole association."""

    association_id: int
    han_id: int | None = None


@dataclass(frozen=True)
class Department:
    department_id: int


Target = Union[Assoc, Department, None]

ALL_HAN = "all"


def han_scope(actor: Actor, permission: str, association_id: int) -> Union[str, frozenset[int]]:
    """Where in an association the actor holds a permission: ALL_HAN, a set of han ids, or empty."""
    if not actor.authenticated or permission not in OFFICER_PERMISSIONS or actor.membership(association_id) is None:
        return frozenset()
    if actor.is_city_staff:
        # City staff see aggregates only (DESIGN.md): an officer role held by a staff account (one granted
        # before the account became staff, say) gives it no member rows and no officer power.
        return frozenset()
    hans: set[int] = set()
    for role in actor.roles_in(association_id):
        if permission in role.permissions:
            if role.han_id is None:
                return ALL_HAN
            hans.add(role.han_id)
    return frozenset(hans)


def shared_scope(actor: Actor, association_id: int, *permissions: str) -> Union[str, frozenset[int]]:
    """Where in an association the actor holds every one of `permissions`: the intersection of their han_scope."""
    out: Union[str, frozenset[int]] = ALL_HAN
    for permission in permissions:
        scope = han_scope(actor, permission, association_id)
        if out == ALL_HAN:
            out = scope
        elif scope != ALL_HAN:
            out = frozenset(out) & frozenset(scope)
    return out


def can(actor: Actor | None, action: str, target: Target = None) -> bool:
    """True only when the rules below allow it; any unknown action or target is refused."""
    if actor is None or not isinstance(actor, Actor):
        return False
    if action == INQUIRY_SEND:
        return True
    if not actor.authenticated:
        return False
    if action == AUTHENTICATED:
        return True
    if action == CITY_ADMIN:
        return actor.is_city_staff
    if action == INQUIRY_ROUTE:
        if not actor.is_city_staff:
            return False
        return isinstance(target, Department) or target is None
    if not isinstance(target, Assoc) or not isinstance(target.association_id, int):
        return False
    if action == JOIN:
        return actor.membership(target.association_id) is None and target.association_id not in actor.pending
    if action == MEMBER:
        return actor.membership(target.association_id) is not None
    if action in OFFICER_PERMISSIONS:
        scope = han_scope(actor, action, target.association_id)
        if scope == ALL_HAN:
            return True
        return target.han_id is not None and target.han_id in scope
    return False


def role_is_valid(valid_from: datetime, valid_until: datetime | None, revoked_at: datetime | None, now: datetime) -> bool:
    """A role grants its permissions from valid_from until valid_until (exclusive), unless revoked."""
    if revoked_at is not None and revoked_at <= now:
        return False
    if valid_from > now:
        return False
    return valid_until is None or now < valid_until
