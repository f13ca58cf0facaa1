"""What a city's operator runs and deploys: the first staff account of a new city, and the compose and nginx
files' settings that the app depends on."""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import select

from chiiki import cli
from chiiki.models import Account, Department
from chiiki.services import accounts, attachments
from chiiki.services.db import session
from chiiki.services.policy import CITY_ADMIN, can
from tests.test_accounts import valid

ROOT = Path(__file__).resolve().parents[1]


def test_a_new_citys_first_staff_member_registers_and_is_made_staff(demo, capsys):
    aid = accounts.register(valid(login_id="shokuin@city.example.jp"))
    with session() as s:
        dept = s.exec(select(Department).where(Department.active.is_(True))).first()
    assert cli.main(["make-staff", "shokuin@city.example.jp", "--department", dept.name]) == 0
    assert "is city staff now" in capsys.readouterr().out
    with session() as s:
        acc = s.get(Account, aid)
    assert acc.is_city_staff and acc.department_id == dept.id
    with session() as s:
        actor = accounts.load_actor_in(s, aid)
    assert can(actor, CITY_ADMIN)
    # A member of an association, an unknown id, an unknown department: refused in words, nothing changed.
    for argv in (["make-staff", "member@example.jp"], ["make-staff", "nobody@example.jp"],
                 ["make-staff", "newcomer@example.jp", "--department", "存在しない課"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "not made staff:" in err and "." not in err.split(":", 1)[1].split()[0]  # words, not a key
    with session() as s:
        assert not s.exec(select(Account.is_city_staff).where(Account.login_id == "member@example.jp")).one()
        assert not s.exec(select(Account.is_city_staff).where(Account.login_id == "newcomer@example.jp")).one()


def test_the_compose_file_sends_the_page_through_the_proxy_and_passes_every_mail_setting():
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    # The page's websocket and uploads go to the public address (nginx), not the app's own port 3000.
    assert re.search(r"REFLEX_API_URL: \$\{CHIIKI_PUBLIC_URL\}", compose)
    assert re.search(r"CHIIKI_PUBLIC_URL: \$\{CHIIKI_PUBLIC_URL:\?", compose)  # required, no localhost default
    for name in ("CHIIKI_SMTP_HOST", "CHIIKI_SMTP_PORT", "CHIIKI_SMTP_USER", "CHIIKI_SMTP_PASSWORD",
                 "CHIIKI_SMTP_STARTTLS", "CHIIKI_MAIL_FROM"):
        assert re.search(rf"^\s+{name}: \$\{{{name}", compose, re.M), name


def test_nginx_takes_as_many_attachments_as_the_app_accepts_in_one_request():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    size = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1))
    assert size * 1024 * 1024 > attachments.MAX_PER_CIRCULAR * attachments.MAX_BYTES
