"""Input checks: what is stored fits its column, however the text grows when it is normalised."""

from __future__ import annotations

import pytest

from chiiki.services import validate
from chiiki.services.errors import ServiceError


def test_an_email_address_is_measured_after_it_is_normalised():
    # "㌖" is one character typed and six (キロメートル) after NFKC: 206 typed, 1,206 stored before.
    with pytest.raises(ServiceError) as e:
        validate.email("a@b.jp" + "\u3316" * 200)
    assert e.value.key == "error.too_long"
    assert validate.email("ＩＣＨＩＲＯ@Example.JP") == "ichiro@example.jp"


def test_a_kana_reading_is_measured_after_it_is_normalised():
    with pytest.raises(ServiceError) as e:
        validate.kana("ヿ" * 150)  # each is コト after NFKC: 300 characters for a column of 200
    assert e.value.key == "error.too_long"
    assert validate.kana("ｻﾄｳ はなこ") == "サトウ ハナコ"


def test_a_login_id_and_a_phone_number_are_measured_after_they_are_normalised():
    with pytest.raises(ServiceError):
        validate.login_id("x@y.jp" + "\u3316" * 50)
    assert validate.phone("０１６６－２３－４５６７") == "0166234567"


def _registration(**change):
    from chiiki.services import accounts

    return {"name": "旭川 花子", "kana": "はなこ", "address": "旭川市1-2", "area_id": accounts.areas()[0][0],
            "birth_year": "1950", "login_id": "h@example.jp", "password": "sakura-haru-1950", **change}


@pytest.mark.parametrize("change", [{"name": "旭川\ud800 花子"}, {"login_id": "a\ud83d@x.jp"},
                                    {"password": "sakura\ud800haru"}, {"birth_year": float("inf")}])
def test_what_no_database_can_store_is_a_message_not_a_crash(demo, change):
    """A lone surrogate (no character, but a browser's JSON can carry one) or infinity in a number."""
    from chiiki.services import accounts

    with pytest.raises(ServiceError):
        accounts.register(_registration(**change))


def test_a_lone_surrogate_in_a_password_is_a_failed_login(demo):
    from chiiki.services import accounts

    with pytest.raises(ServiceError) as e:
        accounts.login("member@example.jp", "pass\ud800word")
    assert e.value.key == "error.login_failed"


def test_the_first_hours_of_year_one_are_a_date_error(demo):
    from chiiki.services.associations import moment

    with pytest.raises(ServiceError) as e:
        moment("0001-01-01", "08:00", "deadline")
    assert e.value.key == "error.date"


@pytest.mark.parametrize("sent", ["²", "①", "١٢", "12", " 7 ", True, -3, 2**63])
def test_a_browser_sent_id_is_a_positive_ascii_number_or_nothing(sent):
    from chiiki.pages.association import as_id

    assert as_id(sent) == {"12": 12, " 7 ": 7}.get(sent, 0)
