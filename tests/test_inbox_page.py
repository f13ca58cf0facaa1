"""The inbox in two prepared statements (circulars.inbox): each row's number of files and its amended mark, and
the page's head (how many the filter finds, the years to choose from, the unread count of all circulars) match
what the tables hold, whatever the filter, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from chiiki.i18n import TZ
from chiiki.models import Circular, Delivery, utcnow
from chiiki.services import attachments, circulars
from chiiki.services.db import session
from tests.conftest import DemoCity
from tests.test_circular_services import PDF, PNG, send_to


def _check_inbox(demo: DemoCity) -> None:
    a1 = demo.association_id(DemoCity.A1)
    kaicho, member = demo.actor("kaicho@example.jp"), demo.actor("member@example.jp")
    files = [attachments.upload(kaicho, a1, "案内.pdf", PDF).id, attachments.upload(kaicho, a1, "地図.png", PNG).id]
    with_files = send_to(demo, title="二つの資料", files=files).circular_id
    amended = send_to(demo, title="訂正あり").circular_id
    circulars.amend(kaicho, amended, "集合は9時です")
    circulars.amend(kaicho, amended, "雨天中止")  # two amendments: still one mark, not two rows
    plain = send_to(demo, title="資料なし").circular_id
    old = send_to(demo, title="昔の回覧").circular_id
    three_years_ago = utcnow() - timedelta(days=3 * 366)
    with session() as s:
        s.exec(update(Circular).where(Circular.id == old).values(sent_at=three_years_ago))
    circulars.confirm(member, circulars.open_circular(member, plain).delivery_id)

    page = circulars.inbox(member, a1, page_size=100)
    by_id = {i.circular_id: i for i in page.items}
    assert (by_id[with_files].attachments, by_id[amended].attachments, by_id[plain].attachments) == (2, 0, 0)
    assert (by_id[with_files].amended, by_id[amended].amended, by_id[plain].amended) == (False, True, False)
    assert by_id[plain].state == "confirmed" and by_id[with_files].state == "unread"
    assert page.total == len(page.items)
    assert page.unread == circulars.unread_count(member, a1) == sum(i.state == "unread" for i in page.items)
    this_year = utcnow().astimezone(TZ).year
    assert page.years == list(range(this_year, three_years_ago.astimezone(TZ).year - 1, -1))
    assert [i.circular_id for i in page.items][-1] == old  # newest first

    # A filter narrows the rows and their total, never the unread count or the years.
    confirmed = circulars.inbox(member, a1, state="confirmed", page_size=100)
    expected = [i.circular_id for i in page.items if i.state == "confirmed"]
    assert plain in expected and [i.circular_id for i in confirmed.items] == expected
    assert confirmed.total == len(expected) < page.total
    assert (confirmed.unread, confirmed.years) == (page.unread, page.years)
    found = circulars.inbox(member, a1, query="9時")
    assert [(i.circular_id, i.amended) for i in found.items] == [(amended, True)] and found.total == 1
    by_year = circulars.inbox(member, a1, year=three_years_ago.astimezone(TZ).year)
    assert [i.circular_id for i in by_year.items] == [old] and by_year.total == 1 and by_year.years == page.years
    # One page of two: the totals are of the whole filter.
    first = circulars.inbox(member, a1, page=1, page_size=2)
    assert len(first.items) == 2 and first.total == page.total and first.pages == -(-page.total // 2)

    unread_only = circulars.inbox(member, a1, state="unread", page_size=100)
    assert [i.circular_id for i in unread_only.items] == [i.circular_id for i in page.items if i.state == "unread"]
    assert unread_only.total == page.unread and plain not in {i.circular_id for i in unread_only.items}
    unconfirmed = circulars.inbox(member, a1, state="unconfirmed", page_size=100)
    assert [i.circular_id for i in unconfirmed.items] == [i.circular_id for i in page.items
                                                          if i.state != "confirmed"]

    # Someone no circular reached: an empty page, no years, nothing unread.
    with session() as s:
        s.exec(update(Delivery).where(Delivery.account_id == demo.account_id("member2@example.jp"))
               .values(account_id=None))
    member2 = demo.actor("member2@example.jp")
    nothing = circulars.inbox(member2, a1, page_size=100)
    assert (nothing.items, nothing.total, nothing.years, nothing.unread) == ([], 0, [], 0)


def test_inbox_rows_and_head_match_the_tables(demo):
    _check_inbox(demo)


@pytest.mark.postgres
def test_inbox_rows_and_head_match_the_tables_on_postgresql(pg_app_db):
    from chiiki.seed import seed_demo

    seed_demo()
    _check_inbox(DemoCity())
