"""The demo city: a few areas, 3 associations with han, ~200 households, officers, residents, city staff."""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, select

from chiiki.models import (
    Account,
    Area,
    Association,
    Department,
    Han,
    Household,
    Membership,
    OfficerRole,
    utcnow,
)
from chiiki.services.accounts import hash_password
from chiiki.services.db import session
from chiiki.services.policy import OFFICER_PERMISSIONS

DEMO_PASSWORD = "chiiki-demo-2026"
FEATURE_SEEDERS = ("demo_association", "demo_circular", "demo_survey", "demo_board", "demo_city")

# (login id, title, permissions, han index or None) for the first association's officers.
DEMO_OFFICERS = [
    ("kaicho@example.jp", "会長", OFFICER_PERMISSIONS, None),
    ("fukukaicho@example.jp", "副会長", ("view_members", "send_circulars", "run_surveys", "moderate_board"), None),
    # Index 2 lands in household 4, which is in 1班, the han this 班長 looks after.
    ("hancho@example.jp", "班長", ("view_members", "send_circulars"), 0),
    ("kaikei@example.jp", "会計", ("view_members", "export"), None),
]
DEMO_LOGINS = [
    ("city@example.jp", "市職員 (city staff)"),
    ("kaicho@example.jp", "会長 of 旭町一丁目町内会: every permission"),
    ("fukukaicho@example.jp", "副会長: view members, circulars, surveys, board"),
    ("kaikei@example.jp", "会計: view members and export"),
    ("hancho@example.jp", "班長 of 1班: view members and circulars, 1班 only"),
    ("member@example.jp", "member of 旭町一丁目町内会 (1班)"),
    ("member2@example.jp", "member of 旭町一丁目町内会 (2班)"),
    ("other@example.jp", "member of 末広東町内会"),
    ("newcomer@example.jp", "registered, not yet in an association"),
]

FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田", "佐々木",
          "山口", "松本", "井上", "木村", "林", "斎藤", "清水"]
FAMILY_KANA = ["サトウ", "スズキ", "タカハシ", "タナカ", "イトウ", "ワタナベ", "ヤマモト", "ナカムラ", "コバヤシ", "カトウ",
               "ヨシダ", "ヤマダ", "ササキ", "ヤマグチ", "マツモト", "イノウエ", "キムラ", "ハヤシ", "サイトウ", "シミズ"]
GIVEN = ["花子", "太郎", "一郎", "幸子", "和子", "健一", "美香", "誠", "洋子", "博"]
GIVEN_KANA = ["ハナコ", "タロウ", "イチロウ", "サチコ", "カズコ", "ケンイチ", "ミカ", "マコト", "ヨウコ", "ヒロシ"]


@dataclass
class DemoIds:
    """What the feature seeders build on."""

    city_area: int = 0
    associations: list[int] = field(default_factory=list)
    han: dict[int, list[int]] = field(default_factory=dict)
    officers: dict[str, int] = field(default_factory=dict)  # login id -> account id
    city_staff: int = 0


def has_accounts(s: Session) -> bool:
    return s.exec(select(func.count()).select_from(Account)).one() > 0


def seed_demo(seed: int = 2026, *, content: bool = True) -> DemoIds | None:
    """Fill an empty database with the demo city; does nothing when accounts already exist.

    content=False stops after places and people (tests of one feature add that feature's content).
    """
    rng = random.Random(seed)
    pw = hash_password(DEMO_PASSWORD)
    ids = DemoIds()
    now = utcnow()
    with session() as s:
        if has_accounts(s):
            return None
        city = Area(name="旭川市", level="city")
        s.add(city)
        s.flush()
        ids.city_area = city.id
        districts = {}
        for i, name in enumerate(["中央地区", "東地区", "北地区"]):
            d = Area(name=name, level="district", parent_id=city.id, sort_order=i)
            s.add(d)
            s.flush()
            districts[name] = d
        blocks = {}
        for i, (dname, bname) in enumerate([("中央地区", "旭町"), ("中央地区", "本町"), ("東地区", "末広東"),
                                            ("北地区", "春光台")]):
            b = Area(name=bname, level="block", parent_id=districts[dname].id, sort_order=i)
            s.add(b)
            s.flush()
            blocks[bname] = b
        specs = [("旭町一丁目町内会", "アサヒマチイッチョウメチョウナイカイ", "旭町", "旭川市旭町1条", 4, 80),
                 ("本町親和会", "ホンチョウシンワカイ", "本町", "旭川市本町2丁目", 3, 60),
                 ("末広東町内会", "スエヒロヒガシチョウナイカイ", "末広東", "旭川市末広東3条", 3, 60)]
        dept = [Department(name="市民生活課", email="shimin@city.example.jp"),
                Department(name="道路維持課", email="doro@city.example.jp"),
                Department(name="福祉保険課", email="fukushi@city.example.jp")]
        s.add_all(dept)
        staff = Account(login_id="city@example.jp", password_hash=pw, name="市役所 職員", kana="シヤクショ ショクイン",
                        display_name="市職員", address="旭川市7条通9丁目", area_id=blocks["本町"].id,
                        birth_year=1980, email="city@example.jp", is_city_staff=True)
        s.add(staff)
        s.flush()
        ids.city_staff = staff.id
        n = 0
        for a_index, (aname, akana, block, street, han_count, households) in enumerate(specs):
            assoc = Association(name=aname, name_kana=akana, area_id=blocks[block].id,
                                description=f"{block}の町内会です。")
            s.add(assoc)
            s.flush()
            ids.associations.append(assoc.id)
            hans = []
            for h in range(han_count):
                han = Han(association_id=assoc.id, name=f"{h + 1}班", route_order=h)
                s.add(han)
                s.flush()
                hans.append(han)
            ids.han[assoc.id] = [h.id for h in hans]
            for i in range(households):
                han = hans[i % han_count]
                fam = rng.randrange(len(FAMILY))
                giv = rng.randrange(len(GIVEN))
                hh = Household(association_id=assoc.id, han_id=han.id, route_position=i // han_count,
                               address=f"{street}{i // 10 + 1}丁目{i % 10 + 1}-{rng.randint(1, 20)}",
                               head_name=f"{FAMILY[fam]} {GIVEN[giv]}", head_kana=f"{FAMILY_KANA[fam]} {GIVEN_KANA[giv]}",
                               paper_only=True)
                s.add(hh)
                s.flush()
                # About 60 % of households have at least one account; the rest stay on paper.
                if rng.random() < 0.6 or i < 8:
                    n += 1
                    login = f"resident{n:03d}@example.jp"
                    if a_index == 0 and i == 0:
                        login = "member@example.jp"
                    elif a_index == 0 and i == 1:
                        login = "member2@example.jp"
                    elif a_index == 2 and i == 0:
                        login = "other@example.jp"
                    elif a_index == 0 and 2 <= i < 2 + len(DEMO_OFFICERS):
                        login = DEMO_OFFICERS[i - 2][0]
                    acc = Account(login_id=login, password_hash=pw, name=hh.head_name, kana=hh.head_kana,
                                  display_name=FAMILY[fam], address=hh.address, area_id=blocks[block].id,
                                  birth_year=rng.randint(1935, 2000), email=login,
                                  email_circulars=rng.random() < 0.3, has_small_children=rng.random() < 0.15)
                    s.add(acc)
                    s.flush()
                    m = Membership(account_id=acc.id, association_id=assoc.id, household_id=hh.id, status="active",
                                   consent_version="2026-1", consented_at=now, decided_at=now)
                    s.add(m)
                    s.flush()
                    hh.paper_only = False
                    s.add(hh)
                    if login in {o[0] for o in DEMO_OFFICERS}:
                        ids.officers[login] = acc.id
                    for o_login, title, perms, han_index in DEMO_OFFICERS:
                        if o_login == login:
                            s.add(OfficerRole(association_id=assoc.id, membership_id=m.id, title=title,
                                              permissions=" ".join(perms),
                                              han_id=None if han_index is None else hans[han_index].id,
                                              valid_from=now))
                    if a_index > 0 and i == 2:
                        # Every association needs a president who may manage members.
                        s.add(OfficerRole(association_id=assoc.id, membership_id=m.id, title="会長",
                                          permissions=" ".join(OFFICER_PERMISSIONS), valid_from=now))
        s.add(Account(login_id="newcomer@example.jp", password_hash=pw, name="新井 みどり", kana="アライ ミドリ",
                      display_name="新井", address="旭川市春光台1条1丁目", area_id=blocks["春光台"].id,
                      birth_year=1990, email="newcomer@example.jp", has_small_children=True))
        s.flush()
        # Each feature adds its demo content (circulars with deliveries, surveys, threads, notices …).
        for module in FEATURE_SEEDERS if content else ():
            importlib.import_module(f"chiiki.{module}").seed_demo_content(s, ids)
    return ids
