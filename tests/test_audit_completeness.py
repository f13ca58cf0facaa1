"""Reads (and changes) of someone's personal data that their own access log once did not show: the link dialog's
household address, the board's report queue, an officer's edit of a member household."""

from sqlmodel import select

from chiiki.models import Membership
from chiiki.services import audit, board, roster
from chiiki.services.db import session


def _household_of(demo, login: str) -> int:
    with session() as s:
        return s.exec(select(Membership.household_id).where(
            Membership.account_id == demo.account_id(login), Membership.status == "active")).one()


def _log_of(demo, login: str) -> list[audit.AccessEntry]:
    with session() as s:
        return audit.accesses_to(s, demo.account_id(login))


def test_the_link_dialog_shows_a_member_households_address_and_the_members_see_it(demo):
    """link_candidates returns the household's own address (the page shows it as the dialog's heading), and the
    household id comes from the browser: like get_household, it is logged for each member living there."""
    kaicho = demo.actor("kaicho@example.jp")
    hid = _household_of(demo, "member@example.jp")
    choice = roster.link_candidates(kaicho, hid)
    assert choice.address  # the member's household address reached the officer
    assert [e for e in _log_of(demo, "member@example.jp") if e.action == "roster.view"], \
        "member@example.jp's address was shown in the link dialog, but their access log is empty"


def test_a_moderator_reading_the_report_queue_shows_on_the_reporters_log(demo_full):
    """The queue shows who reported a post (display name) and the reason they wrote, to the moderators."""
    kaicho = demo_full.actor("kaicho@example.jp")
    queue = board.report_queue(kaicho, demo_full.association_id(demo_full.A1))
    reporters = {line.reporter for item in queue.items for line in item.reports}
    assert reporters  # the demo's report by member2@example.jp is in the queue, with its reason
    assert _log_of(demo_full, "member2@example.jp"), \
        "the reporter's name and reason were read by a moderator, but the reporter's access log is empty"


def test_an_officer_changing_a_member_households_address_shows_on_the_members_log(demo):
    """save_household edits any household in scope, digital ones too: the members' address changes, and each
    member sees it (not only the household id, as for a paper-only one)."""
    kaicho = demo.actor("kaicho@example.jp")
    hid = _household_of(demo, "member@example.jp")
    detail = roster.get_household(kaicho, hid)  # the edit form (logged: roster.view, "edit")
    before = len(_log_of(demo, "member@example.jp"))
    roster.save_household(kaicho, demo.association_id(demo.A1),
                          {"han_id": detail.han_id, "address": detail.address + "-1", "note": detail.note,
                           "route_position": detail.route_position}, hid)
    after = _log_of(demo, "member@example.jp")
    assert len(after) == before + 1 and after[0].action == "roster.household", \
        "the member's address was changed by an officer, but the change is not on the member's access log"
