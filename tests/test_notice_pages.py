"""Notice pages through the state tree: the resident's feed, the staff editor's count-then-publish, demo notices."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Notice, NoticeRead
from chiiki.services import notices
from chiiki.services.db import session
from tests.conftest import login_state, state_text


def _seed_demo_notices() -> None:
    from chiiki.demo_city import seed_demo_content
    from chiiki.seed import DemoIds

    with session() as s:
        seed_demo_content(s, DemoIds())


async def test_staff_see_the_count_before_publishing_and_then_publish(demo, app_state):
    from chiiki.pages.notices import NoticeAdminState

    await login_state(app_state, "city@example.jp")
    st = await app_state.get_state(NoticeAdminState)
    await NoticeAdminState.load.fn(st)
    central = next(a for a in st.area_options if a[1].endswith("中央地区"))
    form = {"title": "敬老会", "body": "公民館で", f"area_{central[0]}": "on", "band_age_65_plus": "on",
            "publish_from_date": "", "publish_until_date": ""}
    await NoticeAdminState.preview.fn(st, form)
    expected = notices.reach_count(notices_staff(demo), notices_draft(central[0]))
    assert expected >= notices.SMALL_GROUP
    # Rounded to a multiple of five, and said to be so.
    assert st.confirming and st.confirm_reach == f"約 {notices.shown_count(expected)}" and st.errors == {}
    assert notices.shown_count(expected) % notices.SMALL_GROUP == 0
    with session() as s:
        assert s.exec(select(func.count(Notice.id))).one() == 0  # nothing written before "publish"
    await NoticeAdminState.publish.fn(st)
    assert not st.confirming and st.rows[0]["title"] == "敬老会" and st.rows[0]["status"] == "published"
    assert "65" in st.rows[0]["targets"] and "中央地区" in st.rows[0]["targets"]


def notices_staff(demo):
    return demo.actor("city@example.jp")


def notices_draft(area_id):
    return {"title": "敬老会", "body": "公民館で", "area_ids": [area_id], "bands": ["age_65_plus"]}


async def test_editor_shows_errors_next_to_fields_and_writes_nothing(demo, app_state):
    from chiiki.pages.notices import NoticeAdminState

    await login_state(app_state, "city@example.jp")
    st = await app_state.get_state(NoticeAdminState)
    await NoticeAdminState.load.fn(st)
    await NoticeAdminState.preview.fn(st, {"title": "", "body": "b", "publish_from_date": "2030-02-02",
                                           "publish_until_date": "2030-02-01"})
    assert set(st.errors) == {"title", "target", "publish_until"} and not st.confirming
    assert st.errors["target"] == "届ける相手(すべての住民・地区・年代)を選んでください"
    await NoticeAdminState.publish.fn(st)  # a forged "publish" without a counted draft does nothing
    with session() as s:
        assert s.exec(select(func.count(Notice.id))).one() == 0


async def test_resident_feed_shows_their_notices_and_marks_them_read(demo, app_state):
    from chiiki.pages.notices import NoticeFeedState

    _seed_demo_notices()
    await login_state(app_state, "newcomer@example.jp")  # 春光台 (北地区), born 1990, small children
    feed = await app_state.get_state(NoticeFeedState)
    await NoticeFeedState.load.fn(feed)
    titles = [i["title"] for i in feed.items]
    # Not the snow notice (中央地区), not 65+, not the scheduled check-up; yes to children and to everyone.
    assert titles == ["子育て支援センターの冬のイベント", "年末年始のごみ収集日程"]
    assert feed.unread == 2
    first = feed.items[0]["id"]
    await NoticeFeedState.toggle.fn(feed, first)
    assert feed.open_id == first and feed.items[0]["read"] == "1" and feed.unread == 1
    assert "日時:毎週水曜日 10時〜11時半" in [s.text for b in feed.open_blocks for ln in b.lines for s in ln.segs]
    with session() as s:
        assert s.exec(select(func.count(NoticeRead.id))).one() == 1
    # An id that is not in this resident's feed is ignored.
    await NoticeFeedState.toggle.fn(feed, "999999")
    assert feed.open_id == "" and feed.error == ""


async def test_urgent_notices_come_first_for_the_people_they_target(demo, app_state):
    from chiiki.pages.notices import NoticeFeedState

    _seed_demo_notices()
    await login_state(app_state, "member@example.jp")  # 旭町 in 中央地区
    feed = await app_state.get_state(NoticeFeedState)
    await NoticeFeedState.load.fn(feed)
    assert feed.items[0]["urgent"] == "1" and feed.items[0]["title"].startswith("大雪")
    blocks = await _open(feed, feed.items[0]["id"])
    links = [s.href for b in blocks for ln in b.lines for s in ln.segs if s.kind == "a"]
    assert links == ["https://www.city.asahikawa.hokkaido.jp/"]
    # The feed holds notices only: no other resident's data.
    assert "旭町1条" not in state_text(app_state).replace(feed.items[0]["title"], "")


async def _open(feed, notice_id):
    from chiiki.pages.notices import NoticeFeedState

    await NoticeFeedState.toggle.fn(feed, notice_id)
    return feed.open_blocks


def test_editor_upload_is_labelled_and_its_buttons_are_large_enough():
    """The dropzone's hidden input is named by the visible label (assets/a11y.js); targets are at least 44px."""
    from chiiki.pages.notices import NoticeAdminState, _draft_file, _files_box, files_view

    box = str(_files_box().render())
    assert 'id:"notice-files-label"' in box and '"data-label-id":"notice-files-label"' in box
    assert 'id:"notice-files"' in box and 'id:"notice-upload-files"' not in box  # attached when chosen
    assert '["minHeight"] : "48px"' in box  # the dropzone
    row = str(_draft_file(NoticeAdminState.files[0]).render())
    # "Remove <file name>" for screen readers, as text (a component in an attribute would read "[object Object]").
    assert '["minHeight"] : "44px"' in row and '"aria-label":((' in row and '"Remove "+' in row
    links = str(files_view(NoticeAdminState.files).render())
    assert '["minHeight"] : "48px"' in links and 'target:"_blank"' in links
    assert '" (opens in a new tab)"' in links and '"aria-label":(jsx' not in links


async def test_staff_see_fewer_than_five_instead_of_a_small_count(demo, app_state):
    """A target that reaches one to four residents, and how many of them opened it, are shown as "fewer than
    5": the number would tell staff something about those few people."""
    from chiiki.pages.notices import NoticeAdminState, _published_text

    staff = notices_staff(demo)
    small = None
    for area_id, _label, _depth in notices.area_choices(staff):
        for band in notices.TARGETS:
            draft = {"title": "t", "body": "b", "area_ids": [area_id], "bands": [band]}
            if 0 < notices.reach_count(staff, draft) < notices.SMALL_GROUP:
                small = (area_id, band)
                break
        if small:
            break
    assert small, "the demo city has a target reaching one to four residents"
    await login_state(app_state, "city@example.jp")
    st = await app_state.get_state(NoticeAdminState)
    await NoticeAdminState.load.fn(st)
    await NoticeAdminState.preview.fn(st, {"title": "小さな対象", "body": "本文", f"area_{small[0]}": "on",
                                           f"band_{small[1]}": "on", "publish_from_date": "", "publish_until_date": ""})
    assert st.confirming and st.confirm_reach_few and st.confirm_reach == ""
    await NoticeAdminState.publish.fn(st)
    # "Fewer than 5" in a sentence of its own: not 「5 未満 人に届きます」.
    assert "5 人未満に届きます" in st.notice and "未満 人" not in st.notice and "未満 通" not in st.notice
    assert not any(f"{n} 人" in st.notice for n in range(1, 5))
    assert _published_text("en", 3, 3) == "Published (reaches fewer than 5 residents; fewer than 5 emails queued)"
    assert _published_text("ja", 12, 0) == "公開しました(約 10 人に届きます。メール 0 通を送信待ちにしました)"
    published = st.rows[0]
    reader = next(a for a in _residents_reached(int(published["id"])))
    notices.mark_read(demo.actor(reader), int(published["id"]))
    await NoticeAdminState.load.fn(st)
    row = next(r for r in st.rows if r["id"] == published["id"])
    assert row["reads_few"] == "1" and row["reads"] == ""


def _residents_reached(notice_id: int) -> list[str]:
    """Login ids of residents who see this notice in their feed."""
    from chiiki.models import Account

    with session() as s:
        logins = s.exec(select(Account.login_id).where(Account.login_id.is_not(None))).all()
    from chiiki.models import utcnow
    from chiiki.services.accounts import load_actor_in

    out = []
    for login in logins:
        with session() as s:
            acc_id = s.exec(select(Account.id).where(Account.login_id == login)).one()
            actor = load_actor_in(s, acc_id, utcnow())
        if any(i.id == notice_id for i in notices.feed(actor).items):
            out.append(login)
    return out


async def test_the_staff_list_and_the_publish_message_switch_language(demo, app_state):
    """A language switch on the staff page (chiiki.state.relabel_page) shows the list's status, dates and targets,
    the counted reach and the message after publishing in the other language, on the same page."""
    from chiiki.i18n import tr
    from chiiki.pages.notices import NoticeAdminState
    from tests.test_language_switch import open_page, switch_language

    _seed_demo_notices()
    await login_state(app_state, "city@example.jp")
    await open_page(app_state, "/notices/admin")
    st = await app_state.get_state(NoticeAdminState)
    await NoticeAdminState.preview.fn(st, {"title": "全員へ", "body": "本文", "everyone": "on"})
    reach = notices.reach_count(notices_staff(demo), {"title": "t", "body": "b", "everyone": True})
    assert st.confirming and st.confirm_reach == f"約 {notices.shown_count(reach)}"
    await switch_language(app_state)
    assert st.confirming and st.confirm_reach == f"about {notices.shown_count(reach)}"
    await NoticeAdminState.publish.fn(st)  # published in English…
    await switch_language(app_state)  # …and shown again in Japanese
    assert st.notice.startswith("公開しました(約 ")
    await switch_language(app_state)
    assert st.notice.startswith("Published (reaches about ")
    assert st.rows and all(r["status_label"] == tr("en", "notice.status." + r["status"]) for r in st.rows)
    assert all("年" not in r["from"] for r in st.rows)
    mine = next(r for r in st.rows if r["title"] == "全員へ")
    assert mine["targets"] == tr("en", "notice.everyone")
    await NoticeAdminState.withdraw.fn(st, mine["id"])
    await switch_language(app_state)
    mine = next(r for r in st.rows if r["title"] == "全員へ")
    assert st.notice == tr("ja", "notice.withdrawn") and mine["status_label"] == "掲載終了"
