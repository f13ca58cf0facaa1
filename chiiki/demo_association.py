"""Demo content for membership: two residents waiting for approval in 旭町一丁目町内会 and one open invite code."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session

from chiiki.models import Account, Association, InviteCode, Membership, utcnow
from chiiki.services.membership import CONSENT_VERSION, hash_code

if TYPE_CHECKING:
    from chiiki.seed import DemoIds

# Printed in the demo guide: joins 旭町一丁目町内会 (1班) directly, 30 uses, valid a year from seeding.
DEMO_INVITE_CODE = "ASHK-WCHK-2345"
APPLICANTS = [
    ("applicant1@example.jp", "大橋 直美", "オオハシ ナオミ", "大橋", "旭川市旭町1条9丁目1-2", "はじめまして。先月引っ越してきました。"),
    ("applicant2@example.jp", "森田 浩二", "モリタ コウジ", "森田", "旭川市旭町1条9丁目4-1", ""),
]


def seed_demo_content(s: Session, ids: "DemoIds") -> None:
    from chiiki.seed import DEMO_PASSWORD
    from chiiki.services.accounts import hash_password

    rng = random.Random(3)
    now = utcnow()
    a1 = ids.associations[0]
    area_id = s.get(Association, a1).area_id
    pw = hash_password(DEMO_PASSWORD)
    for i, (login, name, kana, display, address, note) in enumerate(APPLICANTS):
        acc = Account(login_id=login, password_hash=pw, name=name, kana=kana, display_name=display, address=address,
                      area_id=area_id, birth_year=rng.randint(1950, 1995), email=login)
        s.add(acc)
        s.flush()
        s.add(Membership(account_id=acc.id, association_id=a1, status="pending", consent_version=CONSENT_VERSION,
                         consented_at=now - timedelta(days=2 - i), requested_at=now - timedelta(days=2 - i),
                         message=note))
    s.add(InviteCode(association_id=a1, code_hash=hash_code(DEMO_INVITE_CODE.replace("-", "")),
                     han_id=ids.han[a1][0], expires_at=now + timedelta(days=365), max_uses=30,
                     created_by=ids.officers.get("kaicho@example.jp"), created_at=now))
    s.flush()
