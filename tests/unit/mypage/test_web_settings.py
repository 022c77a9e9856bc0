"""The customer web app's settings (`RENTAL_WEB_*`), read with MyPage's."""

from __future__ import annotations

import pytest

from rental_operator import config


def test_defaults() -> None:
    settings = config.load_mypage({})
    assert settings.web_enabled is True
    assert settings.web_open_applications == 3


def test_values_are_read() -> None:
    settings = config.load_mypage({"RENTAL_WEB_ENABLED": "false", "RENTAL_WEB_OPEN_APPLICATIONS": "100"})
    assert settings.web_enabled is False
    assert settings.web_open_applications == 100


@pytest.mark.parametrize("value", ["0", "101", "many"])
def test_a_bad_limit_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(config.ConfigError, match="RENTAL_WEB_OPEN_APPLICATIONS"):
        config.load_mypage({"RENTAL_WEB_OPEN_APPLICATIONS": value})
