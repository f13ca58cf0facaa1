"""The inquiry page through the state tree: visitors and residents send, staff manage, no content ever shown."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Department, Inquiry
from chiiki.services.db import session
from tests.conftest import login_state, state_text


def _dept() -> str:
    with session() as s:
        return str(s.exec(select(Department.id).where(Department.name == "市民生活課")).one())


async def test_a_visitor_sends_an_inquiry_without_logging_in_and_gets_a_reference(demo, app_state):
    from chiiki.pages.inquiry import InquiryState

    st = await app_state.get_state(InquiryState)
    await InquiryState.load.fn(st)
    assert [d[1] for d in st.departments] == ["市民生活課", "道路維持課", "福祉保険課"]
    assert st.name_default == "" and st.contact_default == ""
    await InquiryState.submit.fn(st, {"department_id": _dept(), "sender_name": "訪問 者", "sender_contact": "0166-12-3456",
                                      "subject": "ごみ", "body": "収集日を教えてください"})
    # No SMTP server in tests: the message goes to the outbox folder, which counts as accepted.
    assert st.errors == {} and st.receipt["state"] == "delivered" and len(st.receipt["reference"]) == 14
    with session() as s:
        q = s.exec(select(Inquiry)).one()
        assert q.body == "" and q.sender_name == "" and q.sender_contact == ""
    ref = st.receipt["reference"]
    await InquiryState.lookup.fn(st, {"reference": ref})
    assert st.found["reference"] == ref and st.found["department"] == "市民生活課"
    await InquiryState.lookup.fn(st, {"reference": "ZZZZ-ZZZZ-ZZZZ"})
    assert st.found == {} and st.lookup_error


async def test_a_resident_sees_their_own_name_prefilled_and_errors_next_to_fields(demo, app_state):
    from chiiki.pages.inquiry import InquiryState

    await login_state(app_state, "member@example.jp")
    st = await app_state.get_state(InquiryState)
    await InquiryState.load.fn(st)
    assert st.name_default and st.contact_default == "member@example.jp"
    await InquiryState.submit.fn(st, {"department_id": "424242", "sender_name": st.name_default,
                                      "sender_contact": st.contact_default, "subject": "s", "body": "x" * 1_000_000})
    assert set(st.errors) == {"department_id", "body"} and st.receipt == {}
    await InquiryState.submit.fn(st, "not a form")
    with session() as s:
        assert s.exec(select(func.count(Inquiry.id))).one() == 0


async def test_staff_manage_departments_and_see_receipts_without_content(demo, app_state):
    from chiiki.pages.inquiry import InquiryAdminState, InquiryState

    visitor = await app_state.get_state(InquiryState)
    await InquiryState.submit.fn(visitor, {"department_id": _dept(), "sender_name": "秘密 太郎",
                                           "sender_contact": "secret@example.jp", "subject": "件名ひみつ",
                                           "body": "本文ひみつ"})
    await login_state(app_state, "city@example.jp")
    st = await app_state.get_state(InquiryAdminState)
    await InquiryAdminState.load.fn(st)
    assert len(st.receipts) == 1 and st.undelivered == [] and st.retention == "30"
    InquiryAdminState.edit_department.fn(st, "new")
    await InquiryAdminState.save_department.fn(st, {"name": "環境課", "email": "bad", "active": "on"})
    assert "email" in st.dept_errors
    await InquiryAdminState.save_department.fn(st, {"name": "環境課", "email": "kankyo@city.example.jp",
                                                    "active": "on"})
    assert st.dept_errors == {} and [d["name"] for d in st.departments][-1] == "環境課"
    await InquiryAdminState.save_retention.fn(st, {"retention_days": "abc"})
    assert st.retention_error
    await InquiryAdminState.save_retention.fn(st, {"retention_days": "14"})
    assert st.retention == "14" and st.retention_error == ""
    text = state_text(app_state)
    assert not any(secret in text for secret in ("秘密 太郎", "secret@example.jp", "件名ひみつ", "本文ひみつ"))


async def test_a_visitor_who_sent_too_many_is_told_when_to_send_again(demo, app_state, monkeypatch):
    """Counted by the address the visitor's websocket came from (router.session.client_ip); the form keeps
    what was typed and says until when."""
    from reflex.istate.data import RouterData

    from chiiki.pages.inquiry import InquiryState
    from chiiki.services import inquiries

    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 1)
    form = {"department_id": _dept(), "sender_name": "訪問 者", "sender_contact": "0166-12-3456",
            "subject": "ごみ", "body": "収集日を教えてください"}

    async def visitor(ip: str):
        root = type(app_state)()
        root.router = RouterData.from_router_data({"sid": f"sid-{ip}", "ip": ip, "headers": {"host": "localhost"}})
        st = await root.get_state(InquiryState)
        await InquiryState.load.fn(st)
        return st

    first, same_place, elsewhere = await visitor("203.0.113.5"), await visitor("203.0.113.5"), await visitor("198.51.100.7")
    await InquiryState.submit.fn(first, form)
    assert first.receipt["state"] == "delivered"
    await InquiryState.submit.fn(same_place, form)  # another tab, the same address
    assert same_place.receipt == {} and same_place.errors == {}
    assert same_place.error.startswith("送信が続いたため") and "以降にもう一度" in same_place.error
    await InquiryState.submit.fn(elsewhere, form)
    assert elsewhere.receipt["state"] == "delivered" and elsewhere.error == ""
    with session() as s:
        assert s.exec(select(func.count()).select_from(Inquiry)).one() == 2
