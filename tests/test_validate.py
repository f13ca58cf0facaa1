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
