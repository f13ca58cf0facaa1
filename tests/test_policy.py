"""The policy, table-driven: every role x every action, fail closed."""

import pytest

from chiiki.services import policy as p
from chiiki.services.policy import ALL_HAN, Actor, Assoc, Department, MemberOf, RoleGrant, can, han_scope

A, B = 1, 2  # two associations
HAN1, HAN2 = 11, 12


def member(aid=A, han=HAN1, account=100, **kw):
    return Actor(account_id=account, display_name="x", memberships=(MemberOf(1, aid, 5, han),), **kw)


def officer(perms, han=None, aid=A, account=101):
    return Actor(account_id=account, display_name="o", memberships=(MemberOf(2, aid, 6, HAN1),),
                 roles=(RoleGrant(9, aid, "役員", frozenset(perms), han),))


ANON = p.ANONYMOUS
RESIDENT = Actor(account_id=7, display_name="r")
MEMBER = member()
PRESIDENT = officer(p.OFFICER_PERMISSIONS)
NO_VIEW = officer([p.SEND_CIRCULARS])
HANCHO = officer([p.VIEW_MEMBERS, p.SEND_CIRCULARS], han=HAN1)
OTHER_ASSOC = officer(p.OFFICER_PERMISSIONS, aid=B)
STAFF = Actor(account_id=8, display_name="s", is_city_staff=True)
# An officer whose membership is gone keeps no powers even if a role row lingers.
ORPHAN_ROLE = Actor(account_id=9, roles=(RoleGrant(1, A, "会長", frozenset(p.OFFICER_PERMISSIONS), None),))

WHOLE = Assoc(A)
IN_HAN1 = Assoc(A, HAN1)
IN_HAN2 = Assoc(A, HAN2)

# actor, action, target, expected
TABLE = [
    # anonymous: nothing but sending an inquiry
    *[(ANON, perm, WHOLE, False) for perm in p.OFFICER_PERMISSIONS],
    (ANON, p.AUTHENTICATED, None, False), (ANON, p.MEMBER, WHOLE, False), (ANON, p.JOIN, WHOLE, False),
    (ANON, p.CITY_ADMIN, None, False), (ANON, p.INQUIRY_SEND, None, True),
    # a resident who is not a member
    *[(RESIDENT, perm, WHOLE, False) for perm in p.OFFICER_PERMISSIONS],
    (RESIDENT, p.AUTHENTICATED, None, True), (RESIDENT, p.MEMBER, WHOLE, False), (RESIDENT, p.JOIN, WHOLE, True),
    (RESIDENT, p.CITY_ADMIN, None, False),
    # a plain member
    *[(MEMBER, perm, WHOLE, False) for perm in p.OFFICER_PERMISSIONS],
    *[(MEMBER, perm, IN_HAN1, False) for perm in p.OFFICER_PERMISSIONS],
    (MEMBER, p.MEMBER, WHOLE, True), (MEMBER, p.JOIN, WHOLE, False), (MEMBER, p.MEMBER, Assoc(B), False),
    (MEMBER, p.CITY_ADMIN, None, False), (MEMBER, p.INQUIRY_ROUTE, None, False),
    # the president holds everything in A, nothing in B
    *[(PRESIDENT, perm, WHOLE, True) for perm in p.OFFICER_PERMISSIONS],
    *[(PRESIDENT, perm, IN_HAN2, True) for perm in p.OFFICER_PERMISSIONS],
    *[(PRESIDENT, perm, Assoc(B), False) for perm in p.OFFICER_PERMISSIONS],
    (PRESIDENT, p.CITY_ADMIN, None, False),
    # an officer without view_members
    (NO_VIEW, p.VIEW_MEMBERS, WHOLE, False), (NO_VIEW, p.VIEW_MEMBERS, IN_HAN1, False),
    (NO_VIEW, p.SEND_CIRCULARS, WHOLE, True), (NO_VIEW, p.EXPORT, WHOLE, False),
    # a han-scoped officer: own han only, never the whole association
    (HANCHO, p.VIEW_MEMBERS, IN_HAN1, True), (HANCHO, p.VIEW_MEMBERS, IN_HAN2, False),
    (HANCHO, p.VIEW_MEMBERS, WHOLE, False), (HANCHO, p.SEND_CIRCULARS, IN_HAN1, True),
    (HANCHO, p.MANAGE_MEMBERS, IN_HAN1, False), (HANCHO, p.EXPORT, IN_HAN1, False),
    # an officer of another association
    *[(OTHER_ASSOC, perm, WHOLE, False) for perm in p.OFFICER_PERMISSIONS],
    *[(OTHER_ASSOC, perm, IN_HAN1, False) for perm in p.OFFICER_PERMISSIONS],
    (OTHER_ASSOC, p.MEMBER, WHOLE, False),
    # city staff: administration, never member rows
    *[(STAFF, perm, WHOLE, False) for perm in p.OFFICER_PERMISSIONS],
    (STAFF, p.CITY_ADMIN, None, True), (STAFF, p.INQUIRY_ROUTE, Department(3), True),
    (STAFF, p.MEMBER, WHOLE, False),
    *[(ORPHAN_ROLE, perm, WHOLE, False) for perm in p.OFFICER_PERMISSIONS],
]


@pytest.mark.parametrize("actor,action,target,expected", TABLE)
def test_policy_table(actor, action, target, expected):
    assert can(actor, action, target) is expected


@pytest.mark.parametrize("actor", [ANON, RESIDENT, MEMBER, PRESIDENT, HANCHO, STAFF])
@pytest.mark.parametrize("bad", ["", "delete_everything", "VIEW_MEMBERS", None, 3])
def test_unknown_actions_are_refused(actor, bad):
    assert can(actor, bad, WHOLE) is False


@pytest.mark.parametrize("target", [None, "1", 1, Department(1), Assoc("1")])
def test_officer_permissions_need_an_association_target(target):
    assert can(PRESIDENT, p.VIEW_MEMBERS, target) is False


def test_not_an_actor_is_refused():
    assert can(None, p.AUTHENTICATED) is False
    assert can({"account_id": 1}, p.AUTHENTICATED) is False


def test_han_scope():
    assert han_scope(PRESIDENT, p.VIEW_MEMBERS, A) == ALL_HAN
    assert han_scope(HANCHO, p.VIEW_MEMBERS, A) == frozenset({HAN1})
    assert han_scope(MEMBER, p.VIEW_MEMBERS, A) == frozenset()
    assert han_scope(PRESIDENT, p.VIEW_MEMBERS, B) == frozenset()
    assert han_scope(PRESIDENT, "nonsense", A) == frozenset()
