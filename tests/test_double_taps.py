"""A second tap queued before the first one's answer changed the page (elderly hands double-tap): it does the
thing once, and shows no error beside the first tap's thanks."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Inquiry, Notice, NoticeRead
from chiiki.services.db import session
from tests.conftest import login_state
from tests.test_inquiry_pages import _dept


def _count(model) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


async def test_a_double_tap_sends_one_inquiry(demo, app_state):
    from chiiki.pages.inquiry import InquiryState

    st = await app_state.get_state(InquiryState)
    await InquiryState.load.fn(st)
    form = {"department_id": _dept(), "sender_name": "訪問 者", "sender_contact": "0166-12-3456",
            "subject": "ごみ", "body": "収集日を教えてください"}
    await InquiryState.submit.fn(st, form)
    first = dict(st.receipt)
    await InquiryState.submit.fn(st, form)
    assert _count(Inquiry) == 1 and st.receipt == first and st.error == ""
    InquiryState.write_another.fn(st)
    await InquiryState.submit.fn(st, form)  # asked for: a second inquiry
    assert _count(Inquiry) == 2


async def test_a_double_tap_on_read_opens_the_notice_once(demo, app_state):
    from chiiki.pages.notices import NoticeFeedState
    from chiiki.services import notices

    staff = demo.actor("city@example.jp")
    notices.publish(staff, {"title": "全員へ", "body": "本文", "everyone": "on"})
    await login_state(app_state, "member@example.jp")
    feed = await app_state.get_state(NoticeFeedState)
    await NoticeFeedState.load.fn(feed)
    key = feed.items[0]["id"]
    await NoticeFeedState.toggle.fn(feed, key, True)
    await NoticeFeedState.toggle.fn(feed, key, True)
    assert feed.open_id == key and feed.open_blocks
    with session() as s:
        assert s.exec(select(func.count()).select_from(NoticeRead)).one() == 1
    await NoticeFeedState.toggle.fn(feed, key, False)
    await NoticeFeedState.toggle.fn(feed, key, False)
    assert feed.open_id == ""


async def test_a_published_notice_leaves_the_editor_empty(demo, app_state):
    """What stays typed after 公開する would be published again by the next 確認 → 公開."""
    from chiiki.pages.notices import NoticeAdminState
    from tests.test_language_switch import open_page

    await login_state(app_state, "city@example.jp")
    await open_page(app_state, "/notices/admin")
    st = await app_state.get_state(NoticeAdminState)
    key = st.form_key
    await NoticeAdminState.preview.fn(st, {"title": "全員へ", "body": "本文", "everyone": "on"})
    await NoticeAdminState.publish.fn(st)
    await NoticeAdminState.publish.fn(st)  # a second tap on 公開する
    assert st.form_key == key + 1 and not st.confirming
    with session() as s:
        assert s.exec(select(func.count()).select_from(Notice).where(Notice.title == "全員へ")).one() == 1


async def test_the_drop_zone_waits_while_a_file_uploads_and_says_why_a_file_is_refused(demo, app_state):
    """Files attach as soon as chosen: while one uploads the zone and the preview wait (the browser drops a
    second choice made meanwhile), and a file refused by type or size is said in words."""
    from chiiki.pages.circular_admin import ComposeState

    await login_state(app_state, "kaicho@example.jp")
    st = await app_state.get_state(ComposeState)
    ComposeState.upload_progress.fn(st, {"progress": 0.4, "loaded": 4, "total": 10})
    assert st.uploading
    ComposeState.upload_progress.fn(st, {"progress": 1, "loaded": 10, "total": 10})
    assert not st.uploading
    ComposeState.upload_progress.fn(st, "nonsense")
    assert not st.uploading
    await ComposeState.upload_refused.fn(st, [{"file": {"path": "a.exe"}, "errors": []}])
    assert st.file_error.startswith("このファイルは添付できません") and not st.uploading


async def test_a_double_tap_on_a_first_survey_answer_thanks_once_and_writes_once(demo, app_state):
    """The second tap of 回答する arrives after the first one's answer was stored: it is the same answer, not a
    change, so the page keeps the first answer's thanks; a real change afterwards is still called one."""
    from chiiki.pages.surveys import SAME_ANSWER_AGAIN_S, SurveyAnswerState
    from tests.test_survey_services import counts, make_survey
    from tests.test_survey_states import _answer_page

    sid = make_survey(demo)
    await login_state(app_state, "member@example.jp")
    st = await _answer_page(app_state, sid)
    q = st.questions
    form = {"q" + q[0]["id"]: q[0]["options"][0]["id"], "q" + q[3]["id"]: "3"}
    await SurveyAnswerState.submit.fn(st, form)
    assert st.notice == "回答を送りました。ありがとうございました"
    written = counts()
    await SurveyAnswerState.submit.fn(st, dict(form))
    assert st.notice == "回答を送りました。ありがとうございました" and st.error == "" and st.errors == {}
    assert counts() == written
    changed = {**form, "q" + q[3]["id"]: "4"}
    await SurveyAnswerState.submit.fn(st, changed)
    assert st.notice == "回答を変更しました" and st.questions[3]["value"] == "4"
    # 回答を変更する pressed again later, past the double tap's seconds, is a submission of its own.
    st._sent_at -= SAME_ANSWER_AGAIN_S
    await SurveyAnswerState.submit.fn(st, dict(changed))
    assert st.notice == "回答を変更しました" and st.error == ""


async def test_a_double_tap_on_an_anonymous_answer_shows_no_error_beside_the_thanks(demo, app_state):
    """An anonymous answer cannot be changed: the second tap brought 「無記名のアンケートには回答済みです」 under the
    thanks, and wrote nothing (it must still write nothing)."""
    from chiiki.pages.surveys import SurveyAnswerState
    from tests.test_survey_services import counts, make_survey
    from tests.test_survey_states import _answer_page

    sid = make_survey(demo, anonymous=True)
    await login_state(app_state, "member@example.jp")
    st = await _answer_page(app_state, sid)
    q = st.questions
    form = {"q" + q[0]["id"]: q[0]["options"][1]["id"], "q" + q[3]["id"]: "2"}
    await SurveyAnswerState.submit.fn(st, form)
    written = counts()
    await SurveyAnswerState.submit.fn(st, dict(form))
    assert st.notice == "回答を送りました。ありがとうございました" and st.error == "" and st.errors == {}
    assert counts() == written


async def _answered_twice_meanwhile(demo, app_state, change):
    """The member answers, `change()` happens, and the same answer is sent again at once from the same tab."""
    from chiiki.pages.surveys import SurveyAnswerState
    from tests.test_survey_states import _answer_page

    await login_state(app_state, "member@example.jp")
    st = await _answer_page(app_state, change.survey_id)
    q = st.questions
    form = {"q" + q[0]["id"]: q[0]["options"][0]["id"], "q" + q[3]["id"]: "3"}
    await SurveyAnswerState.submit.fn(st, form)
    assert st.notice == "回答を送りました。ありがとうございました"
    await change(q)
    await SurveyAnswerState.submit.fn(st, dict(form))
    return st


def _stored_number(demo, survey_id: int, login: str = "member@example.jp"):
    from chiiki.services import surveys

    form = surveys.answer_page(demo.actor(login), survey_id).form
    return form.mine.get(form.questions[3].id)


async def test_a_repeated_answer_is_stored_again_when_another_tab_changed_it_meanwhile(demo, app_state):
    """The same answer again within seconds is only skipped while it is still the stored one: changed meanwhile
    in another tab (or by a housemate, or an officer's record), it is what this tab sends, and is stored."""
    import reflex as rx

    from chiiki.pages.surveys import SurveyAnswerState
    from tests.test_survey_services import make_survey
    from tests.test_survey_states import _answer_page

    class Change:
        survey_id = make_survey(demo)

        async def __call__(self, q):
            other = rx.State()
            await login_state(other, "member@example.jp")
            st2 = await _answer_page(other, self.survey_id)
            await SurveyAnswerState.submit.fn(st2, {"q" + q[0]["id"]: q[0]["options"][1]["id"],
                                                    "q" + q[3]["id"]: "7"})
            assert st2.notice == "回答を変更しました"

    change = Change()
    st = await _answered_twice_meanwhile(demo, app_state, change)
    assert _stored_number(demo, change.survey_id) == 3
    assert st.notice == "回答を変更しました" and st.error == ""


async def test_a_repeated_answer_after_the_member_left_is_refused_not_thanked(demo, app_state):
    """The shortcut for a repeated answer still asks the service whether the member may answer: one who has
    left the association since is refused, as any other submission of theirs would be."""
    from sqlalchemy import update

    from chiiki.models import Membership
    from tests.test_survey_services import counts, make_survey

    class Change:
        survey_id = make_survey(demo)

        async def __call__(self, _q):
            with session() as s:
                s.execute(update(Membership).where(Membership.account_id == demo.account_id("member@example.jp"))
                          .values(status="left"))
            self.written = counts()

    change = Change()
    st = await _answered_twice_meanwhile(demo, app_state, change)
    assert st.notice != "回答を送りました。ありがとうございました" or st.error
    assert st.error and counts() == change.written
