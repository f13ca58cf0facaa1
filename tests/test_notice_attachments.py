"""Attachments of city notices: checked by content, linked on publishing, served only to the notice's audience."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
import reflex as rx
from sqlalchemy import func
from sqlmodel import select
from starlette.testclient import TestClient

from chiiki import settings as settings_module
from chiiki.api import api, notice_attachment_url
from chiiki.i18n import tr
from chiiki.models import Attachment, Notice, NoticeArea, OutboxMail, utcnow
from chiiki.services import accounts, attachments, notices
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import ANONYMOUS
from chiiki.state import UIState
from tests.conftest import DemoCity, login_state, state_text

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200
BIG = b"%PDF-" + b"0" * (20 * 1024 * 1024)
STAFF = "city@example.jp"
IN_AUDIENCE = "member@example.jp"  # 旭町, inside 中央地区
OUTSIDE = ("other@example.jp", "newcomer@example.jp")


def staff(demo):
    return demo.actor(STAFF)


def central_id(actor) -> int:
    return next(i for i, label, _depth in notices.area_choices(actor) if label.endswith("中央地区"))


def draft(actor, **extra) -> dict:
    return {"title": "避難所のご案内", "body": "地図を添付します", "area_ids": [central_id(actor)], **extra}


def count(model) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def stored_files() -> set[str]:
    folder = settings_module.settings.attachment_dir
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def row(attachment_id: int) -> Attachment | None:
    with session() as s:
        return s.get(Attachment, attachment_id)


def publish_with_file(demo, name="避難所マップ.pdf", data=PDF, **extra) -> tuple[int, int]:
    actor = staff(demo)
    f = notices.upload_file(actor, name, data)
    published = notices.publish(actor, draft(actor, **extra), [f.id])
    return published.notice_id, f.id


def get(path: str, login: str | None = None, method: str = "GET"):
    client = TestClient(api)
    if login:
        client.cookies.set("chiiki_session", accounts.login(login, "chiiki-demo-2026").token)
    return client.request(method, path)


def upload_file(name: str, data: bytes) -> rx.UploadFile:
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name), size=len(data))


# --------------------------------------------------------------------------- service: upload


def test_staff_upload_is_kept_privately_until_the_notice_is_published(demo):
    info = notices.upload_file(staff(demo), "../../避難所マップ.pdf", PDF)
    assert info.filename == "避難所マップ.pdf" and info.content_type == "application/pdf" and info.size == len(PDF)
    a = row(info.id)
    assert a.notice_id is None and a.circular_id is None and a.uploaded_by == demo.account_id(STAFF)
    path = attachments.file_path(a.storage_key)
    assert path.read_bytes() == PDF
    assert path.parent == settings_module.settings.attachment_dir
    assert "assets" not in path.parts and ".web" not in path.parts
    # The name a browser sees ends in the type the content really has.
    assert notices.upload_file(staff(demo), "photo.pdf", PNG).filename == "photo.png"


@pytest.mark.parametrize("name, data, key", [
    ("big.pdf", BIG, "notice.error.file_too_big"),
    ("setup.pdf", EXE, "notice.error.file_type"),
    ("page.pdf", b"<html><script>alert(1)</script></html>", "notice.error.file_type"),
    ("empty.pdf", b"", "notice.error.file_empty"),
])
def test_bad_files_are_refused_with_a_message_and_nothing_is_kept(demo, name, data, key):
    before_rows, before_files = count(Attachment), stored_files()
    with pytest.raises(ServiceError) as e:
        notices.upload_file(staff(demo), name, data)
    assert e.value.key == key and e.value.field == "attachments"
    for lang in ("ja", "en"):
        assert tr(lang, e.value.key, **e.value.params) != key
    assert count(Attachment) == before_rows and stored_files() == before_files


def test_size_message_names_the_limit_in_both_languages(demo):
    with pytest.raises(ServiceError) as e:
        notices.upload_file(staff(demo), "big.pdf", BIG)
    assert "10MB" in tr("ja", e.value.key, **e.value.params)
    assert "10 MB" in tr("en", e.value.key, **e.value.params)


@pytest.mark.parametrize("who", [IN_AUDIENCE, "kaicho@example.jp", None])
def test_only_city_staff_upload_notice_files(demo, who):
    actor = demo.actor(who) if who else ANONYMOUS
    with pytest.raises(Denied):
        notices.upload_file(actor, "a.pdf", PDF)
    with pytest.raises(Denied):
        attachments.store(ANONYMOUS, attachments.NOTICE, "a.pdf", PDF)
    assert count(Attachment) == 0


def test_staff_remove_a_draft_file_but_not_a_published_one(demo):
    actor = staff(demo)
    keep = notices.upload_file(actor, "keep.pdf", PDF)
    drop = notices.upload_file(actor, "drop.pdf", PDF)
    drop_key = row(drop.id).storage_key
    notices.discard_file(actor, drop.id)
    assert row(drop.id) is None and attachments.file_path(drop_key) is None
    nid = notices.publish(actor, draft(actor), [keep.id]).notice_id
    assert row(keep.id).notice_id == nid
    with pytest.raises(NotFound):
        notices.discard_file(actor, keep.id)
    with pytest.raises(Denied):
        notices.discard_file(demo.actor(IN_AUDIENCE), keep.id)
    # A published file cannot be attached to a second notice.
    with pytest.raises(ValidationErrors) as e:
        notices.publish(actor, draft(actor, title="二つ目"), [keep.id])
    assert e.value.errors == {"attachments": ("notice.error.file_gone", {})}
    items, _ = notices.admin_list(actor)
    assert [f.filename for f in items[0].attachments] == ["keep.pdf"]


def test_someone_elses_upload_cannot_be_published_with_a_notice(demo):
    a1 = demo.association_id(DemoCity.A1)
    theirs = attachments.upload(demo.actor("kaicho@example.jp"), a1, "circular.pdf", PDF)
    actor = staff(demo)
    with pytest.raises(ValidationErrors) as e:
        notices.reach_count(actor, draft(actor), [theirs.id])
    assert set(e.value.errors) == {"attachments"}
    with pytest.raises(ValidationErrors):
        notices.publish(actor, draft(actor), [theirs.id])
    assert count(Notice) == 0 and row(theirs.id).notice_id is None


def test_at_most_five_files_per_notice(demo):
    actor = staff(demo)
    ids = [notices.upload_file(actor, f"{n}.pdf", PDF).id for n in range(6)]
    with pytest.raises(ValidationErrors) as e:
        notices.publish(actor, draft(actor), ids)
    assert e.value.errors["attachments"] == ("notice.error.too_many_files", {"max": 5})
    assert count(Notice) == 0


# --------------------------------------------------------------------------- service: nothing half-written


def test_a_bad_draft_links_no_file_and_reports_every_field(demo):
    actor = staff(demo)
    f = notices.upload_file(actor, "map.pdf", PDF)
    with pytest.raises(ValidationErrors) as e:
        notices.publish(actor, {"title": "", "body": "b", "area_ids": [central_id(actor)]}, [f.id, 999999])
    assert set(e.value.errors) == {"title", "attachments"}
    assert count(Notice) == 0 and row(f.id).notice_id is None


def test_a_failure_after_linking_rolls_everything_back(demo, monkeypatch):
    actor = staff(demo)
    f = notices.upload_file(actor, "map.pdf", PDF)
    key = row(f.id).storage_key

    def broken(*_a, **_k):
        raise RuntimeError("mail queue down")

    monkeypatch.setattr(notices, "_fan_out", broken)
    with pytest.raises(RuntimeError):
        notices.publish(actor, draft(actor), [f.id])
    assert (count(Notice), count(NoticeArea), count(OutboxMail)) == (0, 0, 0)
    assert row(f.id).notice_id is None and attachments.file_path(key) is not None
    monkeypatch.undo()
    # The same upload can be published once the problem is gone.
    nid = notices.publish(actor, draft(actor), [f.id]).notice_id
    assert row(f.id).notice_id == nid


# --------------------------------------------------------------------------- who may download


def test_audience_and_staff_download_everyone_else_gets_not_found(demo):
    nid, fid = publish_with_file(demo)
    assert nid in [i.id for i in notices.feed(demo.actor(IN_AUDIENCE)).items]
    found, key = notices.attachment_for(demo.actor(IN_AUDIENCE), fid)
    assert found.filename == "避難所マップ.pdf" and attachments.file_path(key).read_bytes() == PDF
    assert notices.attachment_for(staff(demo), str(fid))[0].id == fid
    for login in OUTSIDE:
        assert nid not in [i.id for i in notices.feed(demo.actor(login)).items]
        with pytest.raises(NotFound):
            notices.attachment_for(demo.actor(login), fid)
    for bad in (ANONYMOUS,):
        with pytest.raises(NotFound):
            notices.attachment_for(bad, fid)
    for bad_id in ("abc", 0, -1, None, fid + 999):
        with pytest.raises(NotFound):
            notices.attachment_for(staff(demo), bad_id)
    # The feed lists the file with the notice.
    item = next(i for i in notices.feed(demo.actor(IN_AUDIENCE)).items if i.id == nid)
    assert [f.id for f in item.attachments] == [fid]


def test_before_publishing_and_after_the_end_only_staff_download(demo):
    start = utcnow() + timedelta(days=3)
    _nid, fid = publish_with_file(demo, publish_from_date=start)
    resident = demo.actor(IN_AUDIENCE)
    with pytest.raises(NotFound):
        notices.attachment_for(resident, fid)
    assert notices.attachment_for(staff(demo), fid)[0].id == fid
    # Inside the window it opens; after the end it is gone again (same rule as the feed).
    end_nid, end_fid = publish_with_file(demo, publish_until_date=utcnow() + timedelta(days=2))
    assert notices.attachment_for(resident, end_fid)[0].id == end_fid
    with pytest.raises(NotFound):
        notices.attachment_for(resident, end_fid, now=utcnow() + timedelta(days=5))
    notices.withdraw(staff(demo), end_nid)
    with pytest.raises(NotFound):
        notices.attachment_for(resident, end_fid)
    assert notices.attachment_for(staff(demo), end_fid)[0].id == end_fid


def test_a_draft_upload_is_not_served_even_to_its_uploader(demo):
    f = notices.upload_file(staff(demo), "draft.pdf", PDF)
    with pytest.raises(NotFound):
        notices.attachment_for(staff(demo), f.id)
    assert get(notice_attachment_url(f.id), STAFF).status_code == 404


def test_a_circular_file_is_not_served_as_a_notice_file(demo):
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    from chiiki.services import circulars

    f = attachments.upload(kaicho, a1, "回覧.pdf", PDF)
    circulars.send(kaicho, a1, {"title": "回覧", "body": "", "han_ids": [demo.han_ids(DemoCity.A1)[0]]}, [f.id])
    assert circulars.attachment_for(demo.actor(IN_AUDIENCE), f.id)[0].id == f.id
    with pytest.raises(NotFound):
        notices.attachment_for(staff(demo), f.id)
    assert get(notice_attachment_url(f.id), STAFF).status_code == 404


# --------------------------------------------------------------------------- the HTTP route


def test_resident_in_the_audience_downloads_through_the_route_with_safe_headers(demo):
    _nid, fid = publish_with_file(demo)
    assert notice_attachment_url(fid) == f"/files/notice/{fid}"
    r = get(notice_attachment_url(fid), IN_AUDIENCE)
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    disposition = r.headers["content-disposition"].lower()
    assert disposition.startswith("inline") and "filename*=utf-8''" in disposition
    assert "no-store" in r.headers["cache-control"] and "private" in r.headers["cache-control"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert get(notice_attachment_url(fid), IN_AUDIENCE, "HEAD").status_code == 200
    assert get(notice_attachment_url(fid), STAFF).content == PDF


def test_image_is_served_with_its_sniffed_type(demo):
    _nid, fid = publish_with_file(demo, name="地図.pdf", data=PNG)
    r = get(notice_attachment_url(fid), IN_AUDIENCE)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "%E5%9C%B0%E5%9B%B3.png" in r.headers["content-disposition"]


def test_outside_the_audience_a_visitor_and_anyone_before_publishing_get_the_same_404(demo):
    _nid, fid = publish_with_file(demo)
    _later, later_fid = publish_with_file(demo, publish_from_date=utcnow() + timedelta(days=3))
    answers = [
        get(notice_attachment_url(fid)),  # a visitor: no session
        *[get(notice_attachment_url(fid), login) for login in OUTSIDE],
        get(notice_attachment_url(later_fid), IN_AUDIENCE),  # not yet published
        get(notice_attachment_url(fid + 999), IN_AUDIENCE),
        get(notice_attachment_url(0), IN_AUDIENCE),
        get("/files/notice/abc", IN_AUDIENCE),
        get("/files/notice/%C2%B2", IN_AUDIENCE),  # "²": a digit to str.isdigit, not to int()
        get("/files/circular/%C2%B2", IN_AUDIENCE),
    ]
    assert {r.status_code for r in answers} == {404}
    assert {r.content for r in answers} == {b"Not Found"}
    assert all("no-store" in r.headers["cache-control"] for r in answers)
    client = TestClient(api)
    client.cookies.set("chiiki_session", "forged-token-" + "x" * 30)
    assert client.get(notice_attachment_url(fid)).status_code == 404
    # City staff see the scheduled notice's file (they wrote it).
    assert get(notice_attachment_url(later_fid), STAFF).status_code == 200


def test_a_logged_out_session_no_longer_opens_the_file(demo):
    _nid, fid = publish_with_file(demo)
    token = accounts.login(IN_AUDIENCE, "chiiki-demo-2026").token
    client = TestClient(api)
    client.cookies.set("chiiki_session", token)
    assert client.get(notice_attachment_url(fid)).status_code == 200
    accounts.logout(token)
    assert client.get(notice_attachment_url(fid)).status_code == 404


# --------------------------------------------------------------------------- states


async def _editor(root):
    from chiiki.pages.notices import NoticeAdminState

    await login_state(root, STAFF)
    st = await root.get_state(NoticeAdminState)
    await NoticeAdminState.load.fn(st)
    return st


def _form(st) -> dict:
    central = next(a for a in st.area_options if a[1].endswith("中央地区"))
    return {"title": "避難所のご案内", "body": "地図を添付します", f"area_{central[0]}": "on"}


async def test_upload_then_publish_through_the_state_tree_and_the_resident_sees_the_link(demo, app_state):
    from chiiki.pages.notices import NoticeAdminState, NoticeFeedState

    st = await _editor(app_state)
    await NoticeAdminState.upload.fn(st, [upload_file("避難所マップ.pdf", PDF), upload_file("写真.png", PNG)])
    assert [f["name"] for f in st.files] == ["避難所マップ.pdf", "写真.png"] and st.file_error == ""
    await NoticeAdminState.remove_file.fn(st, st.files[1]["id"])
    assert [f["name"] for f in st.files] == ["避難所マップ.pdf"] and count(Attachment) == 1
    await NoticeAdminState.preview.fn(st, _form(st))
    assert st.confirming and st.errors == {}
    assert count(Notice) == 0 and row(int(st.files[0]["id"])).notice_id is None  # nothing linked before publish
    await NoticeAdminState.publish.fn(st)
    assert not st.confirming and st.files == [] and count(Notice) == 1
    top = st.rows[0]
    assert top["title"] == "避難所のご案内" and top["files"] == "1"
    [link] = st.row_files[top["id"]]
    assert link["name"] == "避難所マップ.pdf" and link["path"] == notice_attachment_url(int(link["id"]))
    assert row(int(link["id"])).notice_id == int(top["id"])

    resident = rx.State()
    await login_state(resident, IN_AUDIENCE)
    feed = await resident.get_state(NoticeFeedState)
    await NoticeFeedState.load.fn(feed)
    item = next(i for i in feed.items if i["id"] == top["id"])
    assert item["files"] == "1" and feed.open_files == []
    await NoticeFeedState.toggle.fn(feed, item["id"])
    assert [(f["name"], f["path"]) for f in feed.open_files] == [(link["name"], link["path"])]
    assert get(link["path"], IN_AUDIENCE).content == PDF

    outsider = rx.State()
    await login_state(outsider, "newcomer@example.jp")
    other_feed = await outsider.get_state(NoticeFeedState)
    await NoticeFeedState.load.fn(other_feed)
    assert top["id"] not in [i["id"] for i in other_feed.items]
    assert "避難所マップ" not in state_text(outsider)


async def test_bad_uploads_show_a_clear_message_in_the_chosen_language(demo, app_state):
    from chiiki.pages.notices import NoticeAdminState

    st = await _editor(app_state)
    before = stored_files()
    await NoticeAdminState.upload.fn(st, [upload_file("setup.pdf", EXE)])
    assert st.files == [] and st.file_error.startswith("setup.pdf: ") and "PDF" in st.file_error
    assert "中身" in st.file_error
    await NoticeAdminState.upload.fn(st, [upload_file("big.pdf", BIG)])
    assert st.files == [] and "10MB" in st.file_error
    ui = await app_state.get_state(UIState)
    UIState.toggle_lang.fn(ui)
    assert ui.lang == "en"
    await NoticeAdminState.upload.fn(st, [upload_file("setup.pdf", EXE)])
    assert "Only PDF and images" in st.file_error
    await NoticeAdminState.upload.fn(st, [upload_file("big.pdf", BIG)])
    assert "at most 10 MB" in st.file_error
    assert count(Attachment) == 0 and stored_files() == before
    await NoticeAdminState.upload.fn(st, [upload_file("ok.pdf", PDF)])
    assert [f["name"] for f in st.files] == ["ok.pdf"] and st.file_error == ""


async def test_a_sixth_file_is_refused_in_the_editor(demo, app_state):
    from chiiki.pages.notices import NoticeAdminState

    st = await _editor(app_state)
    await NoticeAdminState.upload.fn(st, [upload_file(f"{n}.pdf", PDF) for n in range(6)])
    assert len(st.files) == 5 and st.file_error == "添付は5つまでです"
    assert count(Attachment) == 5


async def test_a_file_gone_before_publishing_writes_nothing_and_says_so(demo, app_state):
    from chiiki.pages.notices import NoticeAdminState

    st = await _editor(app_state)
    await NoticeAdminState.upload.fn(st, [upload_file("map.pdf", PDF)])
    await NoticeAdminState.preview.fn(st, _form(st))
    assert st.confirming
    attachments.purge_orphans(hours=0)  # the orphan job ran between the count and "publish"
    await NoticeAdminState.publish.fn(st)
    assert not st.confirming and st.errors == {"attachments": "添付ファイルをもう一度選んでください"}
    assert count(Notice) == 0 and count(NoticeArea) == 0 and count(OutboxMail) == 0


async def test_only_city_staff_can_use_the_upload_handler(demo, app_state):
    from chiiki.pages.notices import NoticeAdminState

    await login_state(app_state, IN_AUDIENCE)
    st = await app_state.get_state(NoticeAdminState)
    await NoticeAdminState.upload.fn(st, [upload_file("a.pdf", PDF)])
    assert st.files == [] and st.error == tr("ja", "error.denied")
    assert count(Attachment) == 0


def test_the_orphan_job_keeps_published_files(demo):
    _nid, fid = publish_with_file(demo)
    draft_file = notices.upload_file(staff(demo), "draft.pdf", PDF)
    assert attachments.purge_orphans(hours=0) == 1
    assert row(draft_file.id) is None and row(fid) is not None
    assert attachments.file_path(row(fid).storage_key) is not None


def test_an_upload_linked_after_the_orphan_job_looked_is_not_deleted(demo, monkeypatch):
    """The job deletes only files still unlinked when it deletes, not when it listed them."""
    actor = staff(demo)
    f = notices.upload_file(actor, "map.pdf", PDF)
    real_delete = attachments.delete
    published = {}

    def publish_then_delete(*args, **kwargs):
        # Between the job's list and its delete, the file is published with a notice (another request).
        published["id"] = notices.publish(actor, draft(actor), [f.id]).notice_id
        return real_delete(*args, **kwargs)

    monkeypatch.setattr(attachments, "delete", publish_then_delete)
    assert attachments.purge_orphans(hours=0) == 0
    assert row(f.id) is not None and row(f.id).notice_id == published["id"]
    assert attachments.file_path(row(f.id).storage_key) is not None


def test_a_file_linked_by_another_request_meanwhile_is_refused_not_moved(demo, monkeypatch):
    """Two publishes racing for one upload: the second is refused whole, the file stays with the first notice."""
    actor = staff(demo)
    f = notices.upload_file(actor, "map.pdf", PDF)
    real_pending = attachments.pending
    state = {"raced": False}

    def pending_then_race(*args, **kwargs):
        rows = real_pending(*args, **kwargs)
        if not state["raced"]:
            state["raced"] = True
            state["first"] = notices.publish(actor, draft(actor, title="先に公開"), [f.id]).notice_id
        return rows

    monkeypatch.setattr(attachments, "pending", pending_then_race)
    with pytest.raises(ServiceError) as e:
        notices.publish(actor, draft(actor, title="後から公開"), [f.id])
    assert (e.value.key, e.value.field) == ("notice.error.file_gone", "attachments")
    assert row(f.id).notice_id == state["first"]
    with session() as s:
        assert s.exec(select(Notice.title)).all() == ["先に公開"]


def test_publish_link_and_download_check_run_on_postgresql(pg_app_db):
    """The conditional link and the audience check on the production database."""
    from chiiki.models import Account, Area
    from chiiki.services.policy import Actor

    with session() as s:
        city = Area(name="市", level="city")
        s.add(city)
        s.flush()
        north, south = Area(name="北", level="district", parent_id=city.id), \
            Area(name="南", level="district", parent_id=city.id)
        s.add_all([north, south])
        s.flush()
        people = [Account(login_id="staff@example.jp", is_city_staff=True, area_id=city.id),
                  Account(login_id="n@example.jp", area_id=north.id, birth_year=1950),
                  Account(login_id="s@example.jp", area_id=south.id, birth_year=1950)]
        s.add_all(people)
        s.flush()
        staff_id, in_id, out_id, north_id = people[0].id, people[1].id, people[2].id, north.id
    actor = Actor(account_id=staff_id, is_city_staff=True)
    f = notices.upload_file(actor, "map.pdf", PDF)
    nid = notices.publish(actor, {"title": "t", "body": "b", "area_ids": [north_id]}, [f.id]).notice_id
    assert row(f.id).notice_id == nid
    assert notices.attachment_for(Actor(account_id=in_id), f.id)[0].id == f.id
    with pytest.raises(NotFound):
        notices.attachment_for(Actor(account_id=out_id), f.id)
    with pytest.raises(ServiceError) as e:
        notices.publish(actor, {"title": "t2", "body": "b", "everyone": "on"}, [f.id])
    assert e.value.key == "notice.error.file_gone" and count(Notice) == 1
    # The feed on PostgreSQL: the file with its notice, none with a notice that has none, and nothing for a
    # resident outside the audience.
    plain = notices.publish(actor, {"title": "t3", "body": "b", "everyone": "on"}).notice_id
    feed = {i.id: [a.id for a in i.attachments] for i in notices.feed(Actor(account_id=in_id)).items}
    assert feed == {nid: [f.id], plain: []}
    assert {i.id: [a.id for a in i.attachments] for i in notices.feed(Actor(account_id=out_id)).items} == {plain: []}


def test_the_orphan_job_removes_files_no_upload_row_names(demo):
    """A worker stopped between writing an upload and committing its row (or while writing it) leaves a file
    no row names: the job removes it once it is as old as an unsent upload may grow, and nothing else."""
    import os
    import time

    from chiiki import settings as settings_module

    _nid, fid = publish_with_file(demo)
    old_draft = notices.upload_file(staff(demo), "draft.pdf", PDF)
    folder = settings_module.settings.attachment_dir
    day_ago = time.time() - (attachments.ORPHAN_HOURS + 1) * 3600
    stray, half, fresh = folder / ("ab" * 20), folder / f".{'cd' * 20}.part", folder / ("ef" * 20)
    for p in (stray, half, fresh):
        p.write_bytes(PDF)
    for p in (stray, half, folder / row(fid).storage_key, folder / row(old_draft.id).storage_key):
        os.utime(p, (day_ago, day_ago))
    # A file stored before uploads were made private, and the folder: made private on the way.
    named = folder / row(fid).storage_key
    named.chmod(0o644)
    folder.chmod(0o755)
    assert attachments.purge_stray_files(force=True) == 2  # a named file stays, however old; a fresh one too
    assert not stray.exists() and not half.exists() and fresh.exists()
    assert attachments.file_path(row(fid).storage_key) is not None
    assert attachments.file_path(row(old_draft.id).storage_key) is not None
    assert named.stat().st_mode & 0o777 == 0o600 and folder.stat().st_mode & 0o777 == 0o700
