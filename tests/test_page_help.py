"""Officers' and city staff's pages explain in plain words what they are for."""

import importlib

import pytest

from chiiki.i18n import STRINGS

# (module, page function) for every page only officers or city staff reach.
STAFF_PAGES = [
    ("roster", "roster_page"), ("officers", "officers_page"), ("members_admin", "members_admin_page"),
    ("circular_admin", "admin_page"), ("circular_admin", "compose_page"), ("circular_admin", "status_page"),
    ("surveys", "survey_builder"), ("board", "moderation_page"), ("city", "city_page"),
    ("dashboard", "dashboard_page"), ("inquiry", "inquiry_admin_page"), ("audit_trail", "audit_trail"),
    ("notices", "notice_admin_page"),
]


@pytest.mark.parametrize("module,fn", STAFF_PAGES, ids=lambda v: v)
def test_staff_page_has_help_under_its_heading(module, fn):
    page = getattr(importlib.import_module(f"chiiki.pages.{module}"), fn)
    rendered = str(page())
    assert 'id:"page-help"' in rendered.replace(" ", "") or 'id="page-help"' in rendered, \
        f"{module}.{fn}: add help_key= to its heading()"


def test_help_texts_are_short_enough_to_read_on_a_phone():
    long = {k: len(ja) for k, (ja, en) in STRINGS.items() if k.startswith("help.") and len(ja) > 130}
    assert long == {}
