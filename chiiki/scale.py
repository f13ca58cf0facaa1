"""Synthetic city at Asahikawa scale for benchmarks: deterministic from a seed, bulk-inserted.

    python -m chiiki.scale --db sqlite:///city.db --scale 1.0 --seed 1

Model of the city (DESIGN.md, Scale): 324,186 residents in 177,697 households, 1,239 associations and
102,601 member households. Only member households are on an association's roster (Household rows);
each is either *digital* (every resident of it has an account with an active membership) or
*paper-only* (on the roster, circulars on paper). The other 75,096 households belong to no
association: their residents exist only as accounts (address and area, for city notices), without a
household row or membership. Every resident is an account, all sharing one bcrypt hash of PASSWORD;
only residents of digital households have memberships (a few others have a pending or ended one).

Rows are written table by table with explicit ids: SQLAlchemy Core executemany batches on SQLite (with
journal and fsync off while loading) and COPY on PostgreSQL. Secondary indexes of the big tables are
dropped before loading and rebuilt afterwards, then the database is analysed.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from array import array
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable

import sqlalchemy as sa
from sqlmodel import SQLModel

import chiiki.models  # noqa: F401  (registers every table on SQLModel.metadata)
from chiiki.models import city_month
from chiiki.services.audit import month_of as audit_month


# Public figures for Asahikawa (DESIGN.md); scale=1.0 reproduces them exactly.
RESIDENTS = 324_186
HOUSEHOLDS = 177_697
ASSOCIATIONS = 1_239
MEMBER_HOUSEHOLDS = 102_601
BIGGEST_ASSOCIATION = 3_000
SMALLEST_ASSOCIATION = 20
DIGITAL_SHARE = 0.55  # mean share of member households with accounts (varies by association)
CITY_STAFF = 12

PASSWORD = "chiiki-scale-2026"
# bcrypt of PASSWORD at the default cost (chiiki.settings.DEFAULT_BCRYPT_ROUNDS), computed once: identical rows on
# every run, and login pays the real cost.
PASSWORD_HASH = "$2b$10$z0uj0nf7TFlNCcuYHjmdOuhKlRnFYmpXBPkas3oryhdoeVAsOTXmO"
CONSENT_VERSION = "2026-1"
BATCH = 10_000
ALL_PERMISSIONS = "view_members manage_members send_circulars run_surveys moderate_board export"

FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"), ("伊藤", "イトウ"),
          ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"), ("小林", "コバヤシ"), ("加藤", "カトウ"),
          ("吉田", "ヨシダ"), ("山田", "ヤマダ"), ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"),
          ("井上", "イノウエ"), ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"),
          ("菅原", "スガワラ"), ("工藤", "クドウ"), ("三浦", "ミウラ"), ("阿部", "アベ"), ("石川", "イシカワ")]
GIVEN = [("花子", "ハナコ"), ("太郎", "タロウ"), ("一郎", "イチロウ"), ("幸子", "サチコ"), ("和子", "カズコ"),
         ("健一", "ケンイチ"), ("美香", "ミカ"), ("誠", "マコト"), ("洋子", "ヨウコ"), ("博", "ヒロシ"),
         ("翔太", "ショウタ"), ("陽菜", "ヒナ"), ("節子", "セツコ"), ("勝", "マサル"), ("恵子", "ケイコ")]
DISTRICTS = ["中央", "大成", "新旭川", "永山", "北星", "豊岡", "東旭川", "神楽", "春光", "神居"]
ASSOC_SUFFIX = ["町内会", "自治会", "町内会", "親和会", "町内会", "振興会"]
# Circular titles by month (1-12); a few are used all year.
CIRCULAR_TITLES = {
    1: ["新年会のご案内", "除雪についてのお願い", "灯油の盗難にご注意ください"],
    2: ["雪まつり協力のお願い", "除雪についてのお願い", "屋根の雪下ろし注意"],
    3: ["町内会費の集金について", "役員改選のお知らせ", "春の交通安全運動"],
    4: ["定期総会のご案内", "ごみ収集日の変更について", "新役員のお知らせ"],
    5: ["町内一斉清掃のお知らせ", "花壇づくりのお願い", "資源回収のお知らせ"],
    6: ["防災訓練のお知らせ", "側溝清掃のお知らせ", "熱中症にご注意"],
    7: ["夏祭りのご案内", "子ども会ラジオ体操", "草刈りのお願い"],
    8: ["夏祭り協力のお礼", "盆踊りのご案内", "不審者情報"],
    9: ["敬老会のご案内", "赤い羽根共同募金のお願い", "秋の交通安全運動"],
    10: ["資源回収のお知らせ", "健康診断のお知らせ", "冬囲いのお願い"],
    11: ["歳末たすけあい募金のお願い", "除雪車の運行について", "防火のお願い"],
    12: ["年末年始のごみ収集", "歳末夜回りのお知らせ", "除雪についてのお願い"],
}
ALL_YEAR_TITLES = ["市からのお知らせ", "回覧: 広報あさひかわ", "街路灯の点検について", "役員会の報告"]
# (title, kind, anonymous, per_household, questions: (kind, text, options))
SURVEYS = [
    ("夏祭りの出欠", "attendance", False, True,
     [("single", "夏祭りに参加しますか", ["参加する", "参加しない", "未定"]), ("number", "参加人数", [])]),
    ("定期総会の出欠", "attendance", False, True, [("single", "総会に出席しますか", ["出席", "欠席", "委任状を提出"])]),
    ("安否確認 (地震)", "safety", False, True,
     [("single", "ご無事ですか", ["無事です", "助けが必要です"]), ("text", "状況があればお書きください", [])]),
    ("町内会活動アンケート", "general", True, False,
     [("multiple", "参加したい活動", ["清掃", "夏祭り", "防災訓練", "見守り", "子ども会"]),
      ("text", "ご意見・ご要望", [])]),
    ("除雪の満足度調査", "general", True, False,
     [("single", "今冬の除雪に満足していますか", ["満足", "普通", "不満"]), ("text", "お気づきの点", [])]),
    ("回覧板のデジタル化について", "general", False, False,
     [("single", "回覧はどちらで受け取りたいですか", ["スマートフォン", "紙", "どちらでも"])]),
]
THREADS = ["落とし物を預かっています", "除雪機をお貸しします", "ごみ出しのマナーについて", "子ども会からのお知らせ",
           "迷い猫を探しています", "公園の遊具が壊れています", "夏祭りのボランティア募集", "街灯が切れています",
           "不用品お譲りします", "町内の花壇について"]
POSTS = ["ありがとうございます。", "確認しました。", "私も気になっていました。", "よろしくお願いします。",
         "お手伝いできます。", "市に連絡しておきます。", "詳しく教えてください。", "助かります。"]
NOTICES = ["インフルエンザ予防接種のお知らせ", "大雪に関する注意", "ごみ分別の変更について", "子育て支援センターのご案内",
           "高齢者向け健康教室", "市民税の納期限", "避難所の開設について", "道路工事のお知らせ", "図書館休館のお知らせ",
           "熱中症警戒アラート", "防犯講習会のご案内", "成人式のご案内"]


def _log(progress: Callable[[str], None], text: str) -> None:
    progress(f"[scale] {text}")


# --------------------------------------------------------------------------- the plan (small, in memory)


@dataclass(slots=True)
class HouseholdPlan:
    id: int
    han_id: int
    route: int
    persons: int
    digital: bool
    accounts: list[int] = field(default_factory=list)


@dataclass(slots=True)
class AssociationPlan:
    id: int
    area_id: int
    name: str
    street: str
    han_ids: list[int]
    households: list[HouseholdPlan]
    president: int = 0  # account id of the 会長
    officers: list[int] = field(default_factory=list)  # account ids with send_circulars on the whole association
    han_leaders: dict[int, int] = field(default_factory=dict)  # han id -> account id of its 班長

    @property
    def member_accounts(self) -> list[int]:
        return [a for h in self.households for a in h.accounts]


def _long_tail_sizes(rng: random.Random, n: int, total: int) -> list[int]:
    """Association sizes in households: one at the biggest size, the rest log-normal, summing to total."""
    if n * SMALLEST_ASSOCIATION > total:
        raise ValueError("scale too small: fewer households than associations need")
    biggest = min(BIGGEST_ASSOCIATION, max(SMALLEST_ASSOCIATION, total // 4)) if n > 1 else total
    rest_total = total - biggest
    raw = [min(max(rng.lognormvariate(math.log(50), 0.9), SMALLEST_ASSOCIATION), biggest) for _ in range(n - 1)]
    # Scale the part above the minimum so the sizes add up exactly, keeping the long tail's shape.
    extra = sum(r - SMALLEST_ASSOCIATION for r in raw) or 1.0
    factor = (rest_total - SMALLEST_ASSOCIATION * (n - 1)) / extra
    sizes = [min(biggest, SMALLEST_ASSOCIATION + int((r - SMALLEST_ASSOCIATION) * factor)) for r in raw]
    diff = rest_total - sum(sizes)
    i = 0
    while diff and sizes:
        j = i % len(sizes)
        step = 1 if diff > 0 else -1
        if SMALLEST_ASSOCIATION <= sizes[j] + step <= biggest:
            sizes[j] += step
            diff -= step
        i += 1
    return [biggest, *sizes] if n > 1 else [biggest]


def _person_counts(rng: random.Random, households: int, residents: int) -> list[int]:
    """Persons per household (1-6, many single elderly households) summing exactly to residents."""
    weights = [0.47, 0.32, 0.12, 0.06, 0.02, 0.01]
    sizes = rng.choices(range(1, 7), weights=weights, k=households)
    diff = residents - sum(sizes)
    while diff:
        j = rng.randrange(households)
        step = 1 if diff > 0 else -1
        if 1 <= sizes[j] + step <= 6:
            sizes[j] += step
            diff -= step
    return sizes


@dataclass
class CityPlan:
    seed: int
    now: datetime
    start: datetime
    city_area: int = 0
    districts: list[int] = field(default_factory=list)
    blocks: list[tuple[int, str]] = field(default_factory=list)  # (area id, block name)
    associations: list[AssociationPlan] = field(default_factory=list)
    staff: list[int] = field(default_factory=list)
    departments: list[int] = field(default_factory=list)
    non_member_persons: list[int] = field(default_factory=list)  # persons per non-member household
    member_account_count: int = 0
    total_accounts: int = 0
    next_account: int = 1
    # Per account (index = id): how readily this person reads and answers (0-1), and e-mail opt-in.
    engagement: array = field(default_factory=lambda: array("f"))
    email_circulars: bytearray = field(default_factory=bytearray)


def make_plan(seed: int, scale: float, now: datetime) -> CityPlan:
    rng = random.Random(f"chiiki-scale:{seed}:plan")
    n_assoc = max(3, round(ASSOCIATIONS * scale))
    member_households = max(n_assoc * SMALLEST_ASSOCIATION, round(MEMBER_HOUSEHOLDS * scale))
    all_households = max(member_households + 1, round(HOUSEHOLDS * scale))
    residents = max(all_households, round(RESIDENTS * scale))
    plan = CityPlan(seed=seed, now=now, start=now - timedelta(days=365))
    persons = _person_counts(rng, all_households, residents)
    sizes = _long_tail_sizes(rng, n_assoc, member_households)
    # Areas: city, 10 districts, then about one block per 8 associations.
    area_id = 1
    plan.city_area = area_id
    n_blocks = max(len(DISTRICTS), round(n_assoc / 8))
    for d in range(len(DISTRICTS)):
        area_id += 1
        plan.districts.append(area_id)
    for b in range(n_blocks):
        area_id += 1
        base = DISTRICTS[b % len(DISTRICTS)]
        plan.blocks.append((area_id, f"{base}{b // len(DISTRICTS) + 1}条"))
    plan.staff = list(range(1, CITY_STAFF + 1))
    plan.next_account = CITY_STAFF + 1
    plan.departments = [1, 2, 3, 4, 5, 6]
    han_id = household_id = 0
    person_iter = iter(persons)
    names_used: set[str] = set()
    for a_index, size in enumerate(sizes):
        block_id, block_name = plan.blocks[a_index % len(plan.blocks)]
        name = f"{block_name}{a_index // len(plan.blocks) + 1}丁目{ASSOC_SUFFIX[a_index % len(ASSOC_SUFFIX)]}"
        if name in names_used:
            name = f"{name}{a_index}"
        names_used.add(name)
        han_count = max(1, round(size / rng.uniform(10, 15)))
        han_ids = list(range(han_id + 1, han_id + han_count + 1))
        han_id += han_count
        share = rng.betavariate(5.5, 4.5)
        households = []
        routes = [0] * han_count
        for i in range(size):
            household_id += 1
            k = i * han_count // size  # consecutive households share a han, in route order
            routes[k] += 1
            households.append(HouseholdPlan(
                id=household_id, han_id=han_ids[k], route=routes[k], persons=next(person_iter),
                digital=i == 0 or rng.random() < share,
            ))
        plan.associations.append(AssociationPlan(a_index + 1, block_id, name, f"旭川市{block_name}", han_ids,
                                                 households))
    plan.non_member_persons = list(person_iter)
    _assign_accounts(plan, rng)
    return plan


def _assign_accounts(plan: CityPlan, rng: random.Random) -> None:
    """Account ids for every resident of digital households, then officers; the rest come later."""
    for a in plan.associations:
        for h in a.households:
            if h.digital:
                h.accounts = list(range(plan.next_account, plan.next_account + h.persons))
                plan.next_account += h.persons
        digital = [h for h in a.households if h.digital]
        a.president = digital[0].accounts[0]
        a.officers = [a.president]
        if len(a.households) >= 100 and len(digital) >= 3:
            a.officers.append(digital[1].accounts[0])  # 副会長
        by_han: dict[int, list[HouseholdPlan]] = {}
        for h in digital[1:]:
            by_han.setdefault(h.han_id, []).append(h)
        for hid, members in by_han.items():
            leader = members[-1].accounts[0]
            if rng.random() < 0.4 and leader not in a.officers:
                a.han_leaders[hid] = leader
    plan.member_account_count = plan.next_account - CITY_STAFF - 1
    paper_persons = sum(h.persons for a in plan.associations for h in a.households if not h.digital)
    total = plan.next_account + paper_persons + sum(plan.non_member_persons)
    plan.total_accounts = total - 1
    plan.engagement = array("f", (rng.betavariate(2.2, 1.3) for _ in range(total)))
    plan.email_circulars = bytearray(rng.random() < 0.25 for _ in range(total))


# --------------------------------------------------------------------------- the bulk loader


class Loader:
    """Buffers rows per table and writes them in batches: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, url: str, progress: Callable[[str], None]):
        self.progress = progress
        self.engine = sa.create_engine(url)
        self.pg = self.engine.dialect.name == "postgresql"
        if not self.pg:
            sa.event.listen(self.engine, "connect", _bulk_pragmas)
        self.conn = self.engine.connect()
        inspector = sa.inspect(self.conn)
        self.db_tables = set(inspector.get_table_names())
        self.tables = {t.name: t for t in SQLModel.metadata.sorted_tables if t.name in self.db_tables}
        self.columns: dict[str, list[sa.Column]] = {}
        self.defaults: dict[str, dict[str, object]] = {}
        self.inserts: dict[str, sa.Insert] = {}
        for name, table in self.tables.items():
            present = {c["name"] for c in inspector.get_columns(name)}
            cols = [c for c in table.columns if c.name in present]
            self.columns[name] = cols
            self.defaults[name] = {c.name: _default(c) for c in cols}
            # Only the columns the database has (the model's Table would add every defaulted column).
            self.inserts[name] = sa.table(name, *(sa.column(c.name, c.type) for c in cols)).insert()
            missing = sorted(c.name for c in table.columns if c.name not in present)
            if missing:
                _log(progress, f"note: {name} lacks model columns {missing} (migrations behind models)")
        self.parents = {n: {fk.column.table.name for fk in t.foreign_keys} - {n} for n, t in self.tables.items()}
        self.buffers: dict[str, list[dict]] = {n: [] for n in self.tables}
        self.counts: dict[str, int] = {n: 0 for n in self.tables}
        self.seconds: dict[str, float] = {n: 0.0 for n in self.tables}
        self.dropped: list[sa.Index] = []
        self.fk_checks = True
        if self.pg:
            self.fk_checks = not self._try("SET session_replication_role = replica")

    def _try(self, sql: str) -> bool:
        try:
            with self.conn.begin_nested():
                self.conn.exec_driver_sql(sql)
            return True
        except sa.exc.DBAPIError:
            return False

    def require_empty(self) -> None:
        for name in ("account", "association", "household", "circular"):
            if self.conn.execute(sa.select(sa.func.count()).select_from(self.tables[name])).scalar():
                raise SystemExit(f"the database already has rows in {name}: the generator needs an empty one")

    def drop_indexes(self, names: Iterable[str]) -> None:
        """Secondary indexes are rebuilt once at the end: far faster than maintaining them per row."""
        inspector = sa.inspect(self.conn)
        for name in names:
            existing = {i["name"] for i in inspector.get_indexes(name)}
            for index in self.tables[name].indexes:
                if index.name in existing:
                    index.drop(self.conn)
                    self.dropped.append(index)
        self.conn.commit()

    def add(self, table: str, row: dict) -> None:
        buf = self.buffers[table]
        buf.append(row)
        if len(buf) >= BATCH:
            self.flush(table)

    def flush(self, table: str) -> None:
        for parent in self.parents[table]:
            if self.buffers.get(parent):
                self.flush(parent)
        rows, self.buffers[table] = self.buffers[table], []
        if not rows:
            return
        t0 = time.perf_counter()
        cols = self.columns[table]
        defaults = self.defaults[table]
        if self.pg:
            if not self.conn.in_transaction():
                self.conn.begin()
            names = ", ".join(f'"{c.name}"' for c in cols)
            cursor = self.conn.connection.driver_connection.cursor()
            with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for r in rows:
                    copy.write_row([r[c.name] if c.name in r else defaults[c.name] for c in cols])
        else:
            full = [{c.name: r.get(c.name, defaults[c.name]) for c in cols} for r in rows]
            self.conn.execute(self.inserts[table], full)
        self.counts[table] += len(rows)
        self.seconds[table] += time.perf_counter() - t0

    def flush_all(self) -> None:
        for name in self.tables:
            self.flush(name)
        self.conn.commit()

    def finish(self) -> dict[str, float]:
        """Rebuild the dropped indexes, fix sequences, analyse; returns seconds per step."""
        self.flush_all()
        steps: dict[str, float] = {}
        t0 = time.perf_counter()
        for index in self.dropped:
            index.create(self.conn)
        self.conn.commit()
        steps["indexes"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if self.pg:
            if not self.fk_checks:
                self.conn.exec_driver_sql("SET session_replication_role = origin")
            for name, table in self.tables.items():
                if "id" in table.c and isinstance(table.c.id.type, sa.Integer) and self.counts[name]:
                    self.conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), (SELECT max(id) FROM \"{name}\"))")
            self.conn.commit()
            # VACUUM as well: it sets the visibility map, as autovacuum does on a live database soon after a
            # bulk load, so that counts over the city (the dashboard) can read indexes alone.
            self.conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        else:
            self.conn.exec_driver_sql("ANALYZE")
            self.conn.commit()
            # The app expects WAL (chiiki.services.db); the mode is stored in the file.
            self.conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        steps["analyze"] = time.perf_counter() - t0
        self.conn.close()
        self.engine.dispose()
        return steps


def _bulk_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # Loading only: a crash leaves a broken file, which is fine for a generated database.
    cur.execute("PRAGMA journal_mode=OFF")
    cur.execute("PRAGMA synchronous=OFF")
    cur.execute("PRAGMA foreign_keys=OFF")
    cur.execute("PRAGMA cache_size=-262144")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def _default(column: sa.Column) -> object:
    d = column.default
    if d is None:
        return None
    if d.is_scalar:
        return d.arg
    if d.is_callable:
        return d.arg(None)
    return None


# --------------------------------------------------------------------------- phases


class CityWriter:
    """Emits every table's rows from the plan, one phase per group of tables."""

    def __init__(self, plan: CityPlan, out: Loader):
        self.plan = plan
        self.out = out
        self.ids: dict[str, int] = {}
        self.membership_of: dict[int, int] = {}  # account id -> its active membership id
        self.president_since: dict[int, datetime] = {}  # association id -> when its 会長's role began

    def rng(self, phase: str) -> random.Random:
        return random.Random(f"chiiki-scale:{self.plan.seed}:{phase}")

    def next_id(self, table: str) -> int:
        self.ids[table] = self.ids.get(table, 0) + 1
        return self.ids[table]

    def at(self, rng: random.Random, lo: datetime, hi: datetime) -> datetime:
        """A moment between lo and hi, whole seconds (deterministic and easy to compare)."""
        span = max(1, int((hi - lo).total_seconds()))
        return lo + timedelta(seconds=rng.randrange(span))

    # ---- places and people

    def places(self) -> None:
        p, out = self.plan, self.out
        out.add("area", dict(id=p.city_area, parent_id=None, name="旭川市", level="city", sort_order=0))
        for i, (did, name) in enumerate(zip(p.districts, DISTRICTS)):
            out.add("area", dict(id=did, parent_id=p.city_area, name=f"{name}地区", level="district", sort_order=i))
        for i, (bid, name) in enumerate(p.blocks):
            out.add("area", dict(id=bid, parent_id=p.districts[i % len(p.districts)], name=name, level="block",
                                 sort_order=i))
        for i, dname in enumerate(["市民生活課", "道路維持課", "福祉保険課", "環境部", "子育て支援課", "防災課"]):
            out.add("department", dict(id=p.departments[i], name=dname, email=f"dept{i + 1}@city.example.jp",
                                       active=True))
        created = p.start - timedelta(days=400)
        for a in p.associations:
            kana = "チョウナイカイ"
            out.add("association", dict(id=a.id, area_id=a.area_id, name=a.name, name_kana=kana,
                                        description=f"{a.name}です。{len(a.households)}世帯が加入しています。",
                                        created_at=created, active=True))
            for order, hid in enumerate(a.han_ids):
                out.add("han", dict(id=hid, association_id=a.id, name=f"{order + 1}班", route_order=order))

    def households(self) -> None:
        rng = self.rng("households")
        for a in self.plan.associations:
            for h in a.households:
                fam, kana = rng.choice(FAMILY)
                giv, gkana = rng.choice(GIVEN)
                paper = not h.digital
                self.out.add("household", dict(
                    id=h.id, association_id=a.id, han_id=h.han_id, route_position=h.route,
                    address=f"{a.street}{h.id % 9 + 1}丁目{h.id % 23 + 1}-{h.id % 17 + 1}",
                    head_name=f"{fam} {giv}" if paper else "", head_kana=f"{kana} {gkana}" if paper else "",
                    phone=f"0166-{rng.randrange(20, 99)}-{rng.randrange(10000):04d}" if paper else "",
                    note="", paper_only=paper, created_at=self.plan.start - timedelta(days=rng.randrange(30, 900)),
                    removed_at=None,
                ))

    def accounts(self) -> None:
        rng = self.rng("accounts")
        p = self.plan
        dept_cycle = iter(p.departments * CITY_STAFF)
        for sid in p.staff:
            self._account(rng, sid, login=f"city{sid:02d}@example.jp", family=FAMILY[sid % len(FAMILY)],
                          address="旭川市6条通9丁目", area_id=p.blocks[0][0], staff_dept=next(dept_cycle))
        for a in p.associations:
            for h in a.households:
                family = rng.choice(FAMILY)
                for acc in h.accounts:
                    self._account(rng, acc, login=f"r{acc:07d}@example.jp", family=family,
                                  address=f"{a.street}{h.id % 9 + 1}丁目{h.id % 23 + 1}-{h.id % 17 + 1}",
                                  area_id=a.area_id)
        acc = p.next_account
        # Residents of paper-only households: registered with the city, not members (no smartphone in the
        # association's eyes); their household keeps getting paper circulars.
        for a in p.associations:
            for h in a.households:
                if h.digital:
                    continue
                family = rng.choice(FAMILY)
                for _ in range(h.persons):
                    self._account(rng, acc, login=f"r{acc:07d}@example.jp", family=family,
                                  address=f"{a.street}{h.id % 9 + 1}丁目{h.id % 23 + 1}-{h.id % 17 + 1}",
                                  area_id=a.area_id)
                    acc += 1
        for n, persons in enumerate(p.non_member_persons):
            block_id, block_name = p.blocks[n % len(p.blocks)]
            family = rng.choice(FAMILY)
            for _ in range(persons):
                self._account(rng, acc, login=f"r{acc:07d}@example.jp", family=family,
                              address=f"旭川市{block_name}{n % 9 + 1}丁目{n % 29 + 1}-{n % 13 + 1}", area_id=block_id)
                acc += 1

    def _account(self, rng: random.Random, acc: int, *, login: str, family: tuple[str, str], address: str,
                 area_id: int, staff_dept: int | None = None) -> None:
        giv, gkana = rng.choice(GIVEN)
        age = int(rng.triangular(18, 95, 72))
        self.out.add("account", dict(
            id=acc, login_id=login, password_hash=PASSWORD_HASH, name=f"{family[0]} {giv}",
            kana=f"{family[1]} {gkana}", display_name=family[0], address=address, area_id=area_id,
            birth_year=self.plan.now.year - age, email=login,
            phone=f"090-{rng.randrange(10000):04d}-{rng.randrange(10000):04d}" if rng.random() < 0.5 else "",
            has_small_children=age < 45 and rng.random() < 0.35, locale="ja",
            large_text=age >= 70 and rng.random() < 0.3,
            email_circulars=bool(self.plan.email_circulars[acc]), email_notices=rng.random() < 0.2,
            is_city_staff=staff_dept is not None, department_id=staff_dept, failed_logins=0, locked_until=None,
            created_at=self.plan.start - timedelta(days=rng.randrange(1, 700)), deleted_at=None,
        ))

    def memberships(self) -> None:
        rng = self.rng("memberships")
        p = self.plan
        for a in p.associations:
            for h in a.households:
                for acc in h.accounts:
                    requested = p.start - timedelta(days=rng.randrange(3, 700))
                    mid = self.next_id("membership")
                    self.membership_of[acc] = mid
                    decided = requested + timedelta(hours=rng.randrange(1, 96))
                    self.out.add("membership", dict(
                        id=mid, account_id=acc, association_id=a.id, household_id=h.id, status="active",
                        consent_version=CONSENT_VERSION, consented_at=requested, message="", decision_note="",
                        requested_at=requested, decided_at=decided,
                        decided_by=None if acc == a.president else a.president, left_at=None,
                    ))
        # A few residents outside any association: requests waiting for an officer, and people who left.
        first_other = p.next_account
        others = p.total_accounts + 1 - first_other
        chosen: set[int] = set()
        for k in range(max(3, others // 300)):
            acc = first_other + (k * 7919) % others
            if acc in chosen:
                continue
            chosen.add(acc)
            a = p.associations[(k * 31) % len(p.associations)]
            left = k % 3 == 0
            paper = [h for h in a.households if not h.digital]
            requested = self.at(rng, p.start, p.now - timedelta(days=1))
            self.out.add("membership", dict(
                id=self.next_id("membership"), account_id=acc, association_id=a.id,
                household_id=paper[k % len(paper)].id if left and paper else None,
                status="left" if left else "pending", consent_version=CONSENT_VERSION, consented_at=requested,
                message="" if left else "転居してきました。加入をお願いします。", decision_note="",
                requested_at=requested, decided_at=requested + timedelta(days=1) if left else None,
                decided_by=a.president if left else None, left_at=requested + timedelta(days=60) if left else None,
            ))

    def officers(self) -> None:
        rng = self.rng("officers")
        p = self.plan
        for a in p.associations:
            since = p.now - timedelta(days=rng.randrange(30, 700))
            self.president_since[a.id] = since
            roles = [(a.president, "会長", ALL_PERMISSIONS, None, p.staff[0])]
            if len(a.officers) > 1:
                roles.append((a.officers[1], "副会長", "view_members send_circulars run_surveys moderate_board", None,
                              a.president))
            roles += [(acc, "班長", "view_members send_circulars", hid, a.president)
                      for hid, acc in a.han_leaders.items()]
            for acc, title, perms, han_id, by in roles:
                self.out.add("officerrole", dict(
                    id=self.next_id("officerrole"), association_id=a.id, membership_id=self.membership_of[acc],
                    title=title, permissions=perms, han_id=han_id, valid_from=since, valid_until=None, created_by=by,
                    created_at=since, revoked_at=None,
                ))

    # ---- circulars and their deliveries

    def circulars(self) -> None:
        rng = self.rng("circulars")
        p = self.plan
        for a in p.associations:
            by_han: dict[int, list[HouseholdPlan]] = {}
            for h in a.households:
                by_han.setdefault(h.han_id, []).append(h)
            month = p.start
            for _ in range(12):
                month_end = month + timedelta(days=365 / 12)
                for _ in range(rng.randint(2, 4)):
                    self._circular(rng, a, by_han, self.at(rng, month, min(month_end, p.now - timedelta(minutes=5))))
                month = month_end
            if len(a.households) >= 200:
                self._circular(rng, a, by_han, None)  # a draft being written

    def _circular(self, rng: random.Random, a: AssociationPlan, by_han: dict[int, list[HouseholdPlan]],
                  sent: datetime | None) -> None:
        p = self.plan
        cid = self.next_id("circular")
        titles = CIRCULAR_TITLES[(sent or p.now).month] + ALL_YEAR_TITLES
        title = rng.choice(titles)
        author = a.president
        targets = a.han_ids
        if a.han_leaders and rng.random() < 0.12:
            han_id, author = rng.choice(sorted(a.han_leaders.items()))
            targets = [han_id]
        elif len(a.han_ids) > 2 and rng.random() < 0.08:
            targets = sorted(rng.sample(a.han_ids, rng.randint(1, len(a.han_ids) - 1)))
        elif len(a.officers) > 1 and rng.random() < 0.3:
            author = a.officers[1]
        households = [h for hid in targets for h in by_han.get(hid, [])]
        created = (sent or p.now) - timedelta(minutes=rng.randrange(10, 600))
        row = dict(
            id=cid, association_id=a.id, title=title,
            body=f"{title}\n\n{a.name}の皆さまへ。詳しくは班長までお問い合わせください。",
            due_date=(sent + timedelta(days=rng.randint(7, 14))).date() if sent else None,
            target_all=targets is a.han_ids, status="sent" if sent else "draft", created_by=author,
            created_at=created, sent_at=sent, sent_month=city_month(sent),
            household_count=len(households) if sent else 0,
            read_households=0, confirmed_households=0,
        )
        if targets is not a.han_ids:
            for hid in targets:
                self.out.add("circulartarget", dict(id=self.next_id("circulartarget"), circular_id=cid, han_id=hid))
        if sent is not None:
            if rng.random() < 0.01:
                self.out.add("circularamendment", dict(id=self.next_id("circularamendment"), circular_id=cid,
                                                       body="日付に誤りがありました。訂正いたします。", created_by=author,
                                                       created_at=sent + timedelta(hours=rng.randrange(1, 48))))
            # The household counters the services keep (chiiki.models.Circular), from the rows just made.
            row["read_households"], row["confirmed_households"] = self._deliveries(rng, a, cid, sent, households)
        self.out.add("circular", row)

    def _deliveries(self, rng: random.Random, a: AssociationPlan, cid: int, sent: datetime,
                    households: list[HouseholdPlan]) -> tuple[int, int]:
        """Every delivery of one circular; returns (households read or confirmed, households confirmed)."""
        p = self.plan
        now = p.now
        age_days = (now - sent).total_seconds() / 86400
        # Recent circulars have had less time to be read.
        ripeness = min(1.0, age_days / 10)
        eng = p.engagement
        emails = p.email_circulars
        add = self.out.add
        read_homes = confirmed_homes = 0
        for h in households:
            if not h.digital:
                delivered = sent + timedelta(hours=rng.randrange(12, 96))
                confirmed = age_days > 14 and rng.random() < 0.6
                read_homes += confirmed
                confirmed_homes += confirmed
                leader = a.han_leaders.get(h.han_id, a.president)
                add("delivery", dict(
                    id=self.next_id("delivery"), circular_id=cid, household_id=h.id, account_id=None, han_id=h.han_id,
                    channel="paper", state="confirmed" if confirmed else "unread", read_at=None,
                    confirmed_at=delivered + timedelta(days=rng.randint(3, 10)) if confirmed else None,
                    confirmed_by=leader if confirmed else None, on_behalf=confirmed,
                    paper_delivered_at=delivered if delivered < now else None, notified_at=None,
                ))
                continue
            home_read = home_confirmed = False
            for acc in h.accounts:
                u = rng.random()
                e = eng[acc] * ripeness
                read_at = confirmed_at = None
                state = "unread"
                if u < e:
                    read_at = sent + timedelta(seconds=int(rng.expovariate(1 / 40000)) + 30)
                    if read_at >= now:
                        read_at = None
                    elif u < e * 0.85:
                        state = "confirmed"
                        confirmed_at = min(now, read_at + timedelta(seconds=rng.randrange(5, 900)))
                    else:
                        state = "read"
                add("delivery", dict(
                    id=self.next_id("delivery"), circular_id=cid, household_id=h.id, account_id=acc, han_id=h.han_id,
                    channel="digital", state=state, read_at=read_at, confirmed_at=confirmed_at,
                    confirmed_by=acc if confirmed_at else None, on_behalf=False, paper_delivered_at=None,
                    notified_at=sent + timedelta(seconds=60) if emails[acc] else None,
                ))
                home_read = home_read or state != "unread"
                home_confirmed = home_confirmed or state == "confirmed"
            read_homes += home_read
            confirmed_homes += home_confirmed
        return read_homes, confirmed_homes

    # ---- surveys

    def surveys(self) -> None:
        rng = self.rng("surveys")
        p = self.plan
        for a in p.associations:
            count = 2 + min(6, len(a.households) // 150)
            for k in range(count):
                created = self.at(rng, p.start, p.now - timedelta(days=1))
                self._survey(rng, a, created, SURVEYS[rng.randrange(len(SURVEYS))])

    def _survey(self, rng: random.Random, a: AssociationPlan, created: datetime, spec: tuple) -> None:
        p = self.plan
        title, kind, anonymous, per_household, questions = spec
        sid = self.next_id("survey")
        deadline = created + timedelta(days=rng.randint(3, 21) if kind != "safety" else 2)
        row = dict(
            id=sid, association_id=a.id, title=title, description=f"{a.name}からのお願いです。ご回答ください。",
            kind=kind, deadline=deadline, target_all=True, anonymous=anonymous, per_household=per_household,
            created_by=a.president, created_at=created, closed_at=deadline if deadline < p.now else None,
            answered_accounts=0, answered_households=0,
        )
        qids = []
        for pos, (qkind, text, options) in enumerate(questions):
            qid = self.next_id("surveyquestion")
            self.out.add("surveyquestion", dict(id=qid, survey_id=sid, position=pos, kind=qkind, text=text,
                                                required=qkind in ("single", "multiple")))
            oids = []
            for opos, label in enumerate(options):
                oid = self.next_id("surveyoption")
                oids.append(oid)
                self.out.add("surveyoption", dict(id=oid, question_id=qid, position=opos, label=label))
            qids.append((qid, qkind, oids))
        end = min(deadline, p.now)
        ripeness = min(1.0, (end - created).total_seconds() / (3 * 86400))
        for h in a.households:
            if not h.digital:
                continue
            answered = False
            for acc in h.accounts:
                if rng.random() >= p.engagement[acc] * 0.8 * ripeness:
                    continue
                on = self.at(rng, created, end).date()
                self._response(rng, sid, h, acc, on, (anonymous, per_household), qids)
                row["answered_accounts"] += 1
                answered = True
                if per_household:
                    break
            row["answered_households"] += answered
        # The answer counters the services keep (chiiki.models.Survey), from the rows just made.
        self.out.add("survey", row)

    def _response(self, rng: random.Random, sid: int, h: HouseholdPlan, acc: int, on: date,
                  flags: tuple[bool, bool], qids: list) -> None:
        out = self.out
        anonymous, per_household = flags
        out.add("surveyparticipation", dict(id=self.next_id("surveyparticipation"), survey_id=sid, account_id=acc,
                                            household_id=h.id, answered_on=on,
                                            unit_key=f"h{h.id}" if per_household else f"a{acc}"))
        rid = self.next_id("surveyresponse")
        out.add("surveyresponse", dict(
            id=rid, survey_id=sid, respondent_account_id=None if anonymous else acc,
            household_id=None if anonymous else h.id, han_id=None if anonymous else h.han_id, submitted_on=on,
            updated_at=None,
        ))
        for qid, qkind, oids in qids:
            base = dict(response_id=rid, question_id=qid, option_id=None, text_value="", number_value=None)
            if qkind == "single":
                # The first option is the common answer (attending, safe, satisfied...).
                option = oids[0] if rng.random() < 0.7 else rng.choice(oids)
                out.add("surveyanswer", {**base, "id": self.next_id("surveyanswer"), "option_id": option})
            elif qkind == "multiple":
                for option in sorted(rng.sample(oids, rng.randint(1, min(3, len(oids))))):
                    out.add("surveyanswer", {**base, "id": self.next_id("surveyanswer"), "option_id": option})
            elif qkind == "number":
                out.add("surveyanswer", {**base, "id": self.next_id("surveyanswer"),
                                         "number_value": rng.randint(1, max(1, h.persons))})
            elif rng.random() < 0.2:
                out.add("surveyanswer", {**base, "id": self.next_id("surveyanswer"),
                                         "text_value": rng.choice(POSTS)})

    # ---- board

    def board(self) -> None:
        rng = self.rng("board")
        p = self.plan
        for a in p.associations:
            members = a.member_accounts
            for _ in range(int(len(members) / 25 * rng.uniform(0.5, 1.5))):
                self._thread(rng, a, members)

    def _thread(self, rng: random.Random, a: AssociationPlan, members: list[int]) -> None:
        p = self.plan
        tid = self.next_id("boardthread")
        created = self.at(rng, p.start, p.now - timedelta(hours=1))
        title = rng.choice(THREADS)
        moments = sorted(self.at(rng, created, min(p.now, created + timedelta(days=20)))
                         for _ in range(min(30, int(rng.expovariate(1 / 3)))))
        posts = [(created, f"{title}。よろしくお願いします。")] + [(t, rng.choice(POSTS)) for t in moments]
        self.out.add("boardthread", dict(id=tid, association_id=a.id, author_account_id=rng.choice(members),
                                         title=title, created_at=created, last_post_at=posts[-1][0]))
        for n, (at, body) in enumerate(posts):
            pid = self.next_id("boardpost")
            author = rng.choice(members)
            hidden = n > 0 and rng.random() < 0.01
            self.out.add("boardpost", dict(
                id=pid, thread_id=tid, author_account_id=author, body=body, created_at=at, edited_at=None,
                deleted_at=None, hidden_at=at + timedelta(hours=2) if hidden else None,
                hidden_by=a.president if hidden else None, hidden_reason="不適切な内容のため" if hidden else "",
            ))
            if hidden:
                reporter = rng.choice(members)
                self.out.add("boardreport", dict(
                    id=self.next_id("boardreport"), post_id=pid, reporter_account_id=reporter,
                    reason="不適切な投稿です", created_at=at + timedelta(hours=1), resolved_at=at + timedelta(hours=2),
                    resolved_by=a.president, resolution="hidden",
                ))

    # ---- the audit trail of a year

    def audit(self) -> None:
        """A year of the 会長's accesses to the roster, while they hold the role: a page of 50 households viewed
        twelve times and the whole roster exported four times, as services/audit.record writes them (one
        auditaccess row, one auditevent per person shown: member accounts, and paper-only households by id)."""
        rng = self.rng("audit")
        p = self.plan
        for a in p.associations:
            first_page = a.households[:50]
            since = max(p.start, self.president_since[a.id])
            moments = [(self.at(rng, since, p.now - timedelta(hours=1)), "roster.view", "", first_page)
                       for _ in range(12)]
            moments += [(self.at(rng, since, p.now - timedelta(hours=1)), "roster.export", "csv", a.households)
                        for _ in range(4)]
            for at, action, detail, homes in sorted(moments, key=lambda m: m[0]):
                event = dict(at=at, actor_account_id=a.president, actor_title="会長", action=action,
                             association_id=a.id, record_count=len(homes), detail=detail)
                self.out.add("auditaccess", dict(id=self.next_id("auditaccess"), **event))
                month = audit_month(at)
                for h in homes:
                    for acc, home in [(acc, None) for acc in h.accounts] or [(None, h.id)]:
                        self.out.add("auditevent", dict(id=self.next_id("auditevent"), subject_account_id=acc,
                                                        subject_household_id=home, period=month, **event))

    # ---- city notices

    def notices(self) -> None:
        rng = self.rng("notices")
        p = self.plan
        bands = _notice_bands()
        readers = p.member_account_count
        first_reader = CITY_STAFF + 1
        for k in range(max(4, round(104 * len(p.associations) / ASSOCIATIONS))):
            nid = self.next_id("notice")
            start = self.at(rng, p.start, p.now - timedelta(hours=1))
            everyone = rng.random() < 0.3
            self.out.add("notice", dict(
                id=nid, title=NOTICES[k % len(NOTICES)], body="詳しくは市のホームページをご覧ください。",
                publish_from=start, publish_until=start + timedelta(days=rng.randint(14, 60)) if k % 4 else None,
                urgent=rng.random() < 0.05, target_everyone=everyone,
                bands=" ".join(sorted(rng.sample(bands, rng.randint(1, 2)))) if bands and rng.random() < 0.3 else "",
                created_by=p.staff[k % len(p.staff)], created_at=start - timedelta(hours=2),
            ))
            if not everyone:
                targets = rng.sample(p.districts, 2) if rng.random() < 0.5 else [b for b, _ in rng.sample(p.blocks, 3)]
                for area in sorted(targets):
                    self.out.add("noticearea", dict(id=self.next_id("noticearea"), notice_id=nid, area_id=area))
            if readers:
                for acc in sorted(rng.sample(range(first_reader, first_reader + readers), int(readers * 0.08))):
                    self.out.add("noticeread", dict(id=self.next_id("noticeread"), notice_id=nid, account_id=acc,
                                                    read_at=self.at(rng, start, p.now)))


def _notice_bands() -> list[str]:
    """Age bands as the notices feature defines them, when that module exists; otherwise none."""
    try:
        from chiiki.services import notices
    except ImportError:
        return []
    bands = getattr(notices, "BANDS", ())
    return [b if isinstance(b, str) else str(b[0]) for b in bands]


PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("places", ("area", "department", "association", "han")),
    ("households", ("household",)),
    ("accounts", ("account",)),
    ("memberships", ("membership",)),
    ("officers", ("officerrole",)),
    ("circulars", ("circular", "circulartarget", "circularamendment", "delivery")),
    ("surveys", ("survey", "surveyquestion", "surveyoption", "surveyparticipation", "surveyresponse",
                 "surveyanswer")),
    ("board", ("boardthread", "boardpost", "boardreport")),
    ("notices", ("notice", "noticearea", "noticeread")),
    ("audit", ("auditaccess", "auditevent")),
]
BIG_TABLES = ("household", "account", "membership", "delivery", "surveyparticipation", "surveyresponse",
              "surveyanswer", "boardpost", "noticeread", "auditevent")


def _today() -> datetime:
    d = datetime.now(timezone.utc).date()
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def generate_city(url: str, seed: int = 1, scale: float = 1.0, progress: Callable[[str], None] = print, *,
                  now: datetime | None = None, schema: str = "migrate") -> dict:
    """Fill an empty database with a synthetic city; returns counts, seconds and sample logins.

    `now` anchors the year of history (default: today 00:00 UTC), so the same seed gives the same rows.
    `schema`: "migrate" runs the migrations first, "models" creates the tables from the models, "none"
    expects them to exist.
    """
    if not 0 < scale <= 2:
        raise ValueError("scale must be in (0, 2]")
    started = time.perf_counter()
    now = now or _today()
    _prepare_schema(url, schema)
    t0 = time.perf_counter()
    plan = make_plan(seed, scale, now)
    _log(progress, f"plan: {len(plan.associations):,} associations, "
                   f"{sum(len(a.households) for a in plan.associations):,} member households, "
                   f"{plan.member_account_count:,} member accounts in {time.perf_counter() - t0:.1f} s")
    out = Loader(url, progress)
    out.require_empty()
    out.drop_indexes(n for n in BIG_TABLES if n in out.tables)
    if out.pg and not out.fk_checks:
        _log(progress, "PostgreSQL: foreign keys not checked during the load (session_replication_role=replica)")
    writer = CityWriter(plan, out)
    phase_seconds: dict[str, float] = {}
    for phase, tables in PHASES:
        t0 = time.perf_counter()
        getattr(writer, phase)()
        for name in tables:
            if name in out.tables:
                out.flush(name)
        out.conn.commit()
        phase_seconds[phase] = time.perf_counter() - t0
        rows = sum(out.counts.get(n, 0) for n in tables)
        _log(progress, f"{phase}: {rows:,} rows in {phase_seconds[phase]:.1f} s "
                       f"({', '.join(f'{n} {out.counts.get(n, 0):,}' for n in tables)})")
    steps = out.finish()
    phase_seconds.update(steps)
    _log(progress, f"indexes rebuilt in {steps['indexes']:.1f} s, analysed in {steps['analyze']:.1f} s")
    result = {
        "counts": {n: c for n, c in out.counts.items() if c},
        "insert_seconds": {n: round(s, 2) for n, s in out.seconds.items() if out.counts[n]},
        "phase_seconds": {k: round(v, 2) for k, v in phase_seconds.items()},
        "total_seconds": round(time.perf_counter() - started, 1),
        "password": PASSWORD,
        "logins": sample_logins(plan),
        "households": {"all": sum(len(a.households) for a in plan.associations) + len(plan.non_member_persons),
                       "member": sum(len(a.households) for a in plan.associations),
                       "digital": sum(h.digital for a in plan.associations for h in a.households),
                       "non_member": len(plan.non_member_persons)},
        "biggest_association": {"id": plan.associations[0].id, "name": plan.associations[0].name,
                                "households": len(plan.associations[0].households)},
    }
    _print_totals(result, progress)
    return result


def _prepare_schema(url: str, schema: str) -> None:
    if schema == "migrate":
        from chiiki.services.db import migrate

        migrate(url)
    elif schema == "models":
        eng = sa.create_engine(url)
        SQLModel.metadata.create_all(eng)
        eng.dispose()
    elif schema != "none":
        raise ValueError("schema must be migrate, models or none")


def sample_logins(plan: CityPlan) -> dict[str, str]:
    big = plan.associations[0]
    member = next(acc for h in big.households[1:] if h.digital for acc in h.accounts if acc not in big.officers
                  and acc not in big.han_leaders.values())
    out = {"city_staff": f"city{plan.staff[0]:02d}@example.jp",
           "president_biggest": f"r{big.president:07d}@example.jp",
           "member_biggest": f"r{member:07d}@example.jp"}
    if big.han_leaders:
        out["han_leader_biggest"] = f"r{next(iter(big.han_leaders.values())):07d}@example.jp"
    return out


def _print_totals(result: dict, progress: Callable[[str], None]) -> None:
    _log(progress, "table                    rows     insert s")
    for name, count in sorted(result["counts"].items(), key=lambda kv: -kv[1]):
        _log(progress, f"{name:20} {count:>12,} {result['insert_seconds'][name]:>9.1f}")
    _log(progress, f"total {sum(result['counts'].values()):,} rows in {result['total_seconds']} s")
    hh = result["households"]
    _log(progress, f"households: {hh['all']:,} ({hh['member']:,} on rosters: {hh['digital']:,} digital, "
                   f"{hh['member'] - hh['digital']:,} paper-only; {hh['non_member']:,} non-member, accounts only)")
    _log(progress, f"password for every account: {result['password']}")
    for who, login in result["logins"].items():
        _log(progress, f"  {who:20} {login}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chiiki.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="database URL (default: REFLEX_DB_URL / the app's database)")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = Asahikawa (324k residents)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--schema", choices=("migrate", "models", "none"), default="migrate",
                        help="migrate (default): run migrations first; models: create tables from the models")
    args = parser.parse_args(argv)
    if args.db is None:
        from chiiki import settings as settings_module

        args.db = settings_module.settings.db_url
    generate_city(args.db, seed=args.seed, scale=args.scale, schema=args.schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
