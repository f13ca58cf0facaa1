"""Demo content of the city: targeted notices (urgent and normal). Departments come with chiiki.seed."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from chiiki.models import Area, Notice, NoticeArea, utcnow

if TYPE_CHECKING:
    import chiiki.seed

# (title, body, urgent, area names, bands, starts in days from now, lasts days or None)
DEMO_NOTICES = [
    ("大雪に伴う除雪作業と路上駐車のお願い",
     "**除雪作業の予定**\n中央地区では今夜から明朝にかけて幹線道路の除雪を行います。\n\n"
     "- 路上駐車はしないでください\n- 家の前の雪を道路に出さないでください\n\n"
     "除雪の状況は https://www.city.asahikawa.hokkaido.jp/ でもお知らせします。",
     True, ["中央地区"], [], -1, 3),
    ("敬老会のご案内",
     "今年も各地区の公民館で敬老会を開きます。\n参加を希望される方は、町内会の回覧板でお申し込みください。",
     False, [], ["age_65_plus"], -3, 30),
    ("子育て支援センターの冬のイベント",
     "小さなお子さんと一緒に参加できる室内あそびの会を開きます。\n\n- 日時:毎週水曜日 10時〜11時半\n- 場所:子育て支援センター",
     False, [], ["small_children"], -2, 45),
    ("年末年始のごみ収集日程",
     "年末年始はごみ収集の日程が変わります。各家庭に配布したカレンダーでご確認ください。",
     False, [], [], -5, 40),
    ("春光台地区 市民健康診断のお知らせ",
     "50歳から64歳の方を対象に、春光台地区で健康診断を行います。",
     False, ["北地区"], ["age_50_64"], 7, 30),
]


def seed_demo_content(s: Session, ids: "chiiki.seed.DemoIds") -> None:
    """Write the demo notices straight into the given session (deterministic; no mail is queued)."""
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    areas = dict(s.exec(select(Area.name, Area.id)).all())
    for title, body, urgent, area_names, bands, start, days in DEMO_NOTICES:
        begin = now + timedelta(days=start)
        n = Notice(title=title, body=body, urgent=urgent, publish_from=begin,
                   publish_until=begin + timedelta(days=days) if days else None,
                   target_everyone=not area_names and not bands, bands=" ".join(bands),
                   created_by=ids.city_staff or None, created_at=begin - timedelta(hours=1))
        s.add(n)
        s.flush()
        s.add_all([NoticeArea(notice_id=n.id, area_id=areas[name]) for name in area_names if name in areas])
