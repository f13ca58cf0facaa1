"""A browser can send any JSON to an event handler: a list where a han's id is expected, JSON where files are.
The handlers refuse it quietly or with their usual message, and never crash."""

import pytest

from tests.conftest import login_state


@pytest.mark.parametrize("han", [[], {}, ["1"]])
async def test_the_status_pages_han_filter_takes_only_a_han_id(demo_full, app_state, han):
    from chiiki.pages.circular_admin import StatusState

    await login_state(app_state, "member@example.jp")  # the page's officer check comes later, in the service
    st = await app_state.get_state(StatusState)
    await StatusState.filter_rows.fn(st, {"category": "", "han": han, "days": ""})
    assert st.han == ""


@pytest.mark.parametrize("han", [[], {"a": 1}])
async def test_the_print_sheets_han_choice_takes_only_a_han_id(demo_full, app_state, han):
    from chiiki.pages.circular_admin import PrintState

    await login_state(app_state, "member@example.jp")
    ps = await app_state.get_state(PrintState)
    await PrintState.choose_han.fn(ps, han)
    assert ps.rows == [] and ps.han_id == ""


@pytest.mark.parametrize("files", [True, "x", [{"filename": "a.pdf"}], None])
async def test_an_attachment_upload_of_anything_but_files_attaches_nothing(demo_full, app_state, files):
    from chiiki.pages.circular_admin import ComposeState

    await login_state(app_state, "kaicho@example.jp")
    cs = await app_state.get_state(ComposeState)
    await ComposeState.upload.fn(cs, files)
    assert cs.files == [] and cs.file_error == ""


@pytest.mark.parametrize("files", [[{"filename": "members.csv"}], "members.csv", {"a": 1}])
async def test_a_roster_import_of_anything_but_a_file_says_there_is_no_file(demo_full, app_state, files):
    from chiiki.i18n import tr
    from chiiki.pages.roster import RosterState

    await login_state(app_state, "kaicho@example.jp")
    rs = await app_state.get_state(RosterState)
    await RosterState.upload.fn(rs, files)
    assert rs.import_error == tr("ja", "roster.import_no_file")
