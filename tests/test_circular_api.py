"""The attachment route: the file for those who may see the circular, one plain 404 for everyone else."""

from __future__ import annotations

from starlette.testclient import TestClient

from chiiki.api import api, attachment_url
from chiiki.services import accounts, attachments, circulars
from tests.conftest import DemoCity

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n%%EOF\n"


def token(login: str) -> str:
    return accounts.login(login, "chiiki-demo-2026").token


def sent_with_file(demo):
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    f = attachments.upload(kaicho, a1, "夏祭りのご案内.pdf", PDF)
    han1 = demo.han_ids(DemoCity.A1)[0]
    circulars.send(kaicho, a1, {"title": "夏祭り", "body": "", "han_ids": [han1]}, [f.id])
    return f.id


def get(path: str, login: str | None = None):
    client = TestClient(api)
    if login:
        client.cookies.set("chiiki_session", token(login))
    return client.get(path)


def test_member_of_the_target_han_downloads_the_file_with_safe_headers(demo):
    fid = sent_with_file(demo)
    r = get(attachment_url(fid), "member@example.jp")
    assert r.status_code == 200
    assert r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "inline" in r.headers["content-disposition"]
    assert "filename*=utf-8''" in r.headers["content-disposition"].lower()
    assert "no-store" in r.headers["cache-control"]


def test_everyone_else_gets_the_same_404(demo):
    fid = sent_with_file(demo)
    answers = [
        get(attachment_url(fid)),  # no session
        get(attachment_url(fid), "member2@example.jp"),  # another han
        get(attachment_url(fid), "other@example.jp"),  # another association
        get(attachment_url(fid), "newcomer@example.jp"),
        get(attachment_url(fid + 999), "member@example.jp"),  # no such file
        get(attachment_url(0), "member@example.jp"),
        get("/files/circular/abc", "member@example.jp"),
    ]
    assert {r.status_code for r in answers} == {404}
    assert {r.content for r in answers} == {b"Not Found"}
    client = TestClient(api)
    client.cookies.set("chiiki_session", "forged-token-" + "x" * 30)
    assert client.get(attachment_url(fid)).status_code == 404


def test_an_unsent_upload_is_not_served_even_to_its_uploader(demo):
    a1 = demo.association_id(DemoCity.A1)
    f = attachments.upload(demo.actor("kaicho@example.jp"), a1, "draft.pdf", PDF)
    assert get(attachment_url(f.id), "kaicho@example.jp").status_code == 404


def test_a_logged_out_session_no_longer_opens_the_file(demo):
    fid = sent_with_file(demo)
    t = token("member@example.jp")
    client = TestClient(api)
    client.cookies.set("chiiki_session", t)
    assert client.get(attachment_url(fid)).status_code == 200
    accounts.logout(t)
    assert client.get(attachment_url(fid)).status_code == 404
