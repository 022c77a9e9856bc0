"""config.load_mypage: MyPage's settings, their defaults, and one clear line for a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from rental_operator import config

KEY = "0123456789abcdef0123456789abcdef"


def _error(environ: dict[str, str], *, require_secret: bool = False) -> str:
    with pytest.raises(config.ConfigError) as caught:
        config.load_mypage(environ, require_secret=require_secret)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("configuration error: RENTAL_")
    return message


def test_defaults() -> None:
    settings = config.load_mypage({})
    assert settings.mypage_port == 8080
    assert settings.mypage_host == "0.0.0.0"
    assert settings.mypage_enabled is True
    assert settings.mypage_auth == "token"
    assert settings.token_secret() is None
    assert settings.mypage_identity_header == "X-Customer-Id"
    assert settings.mypage_token_ttl_seconds == 30 * 24 * 3600
    assert settings.namespace_list == []


def test_the_operators_settings_ignore_and_tolerate_mypage_variables() -> None:
    # Both classes read the same environment: neither may refuse the other's variables.
    urls = {"RENTAL_PAYMENT_URL": "http://p.test", "RENTAL_SHIPPING_URL": "http://s.test"}
    settings = config.load({**urls, "RENTAL_MYPAGE_AUTH": "header", "RENTAL_MYPAGE_PORT": "8081"})
    assert settings.mypage_port == 8081
    assert config.load_mypage({**urls, "RENTAL_MYPAGE_AUTH": "header"}).mypage_auth == "header"


def test_the_secret_comes_from_a_variable_or_a_file(tmp_path: Path) -> None:
    assert config.load_mypage({"RENTAL_MYPAGE_TOKEN_SECRET": KEY}).token_secret() == KEY.encode()
    key = tmp_path / "key"
    key.write_text(KEY + "\n")
    settings = config.load_mypage({"RENTAL_MYPAGE_TOKEN_SECRET_FILE": str(key)})
    assert settings.token_secret() == KEY.encode()


def test_the_command_needs_a_secret_in_token_mode() -> None:
    message = _error({}, require_secret=True)
    assert message.startswith("configuration error: RENTAL_MYPAGE_TOKEN_SECRET: required")
    assert config.load_mypage({"RENTAL_MYPAGE_AUTH": "header"}, require_secret=True).mypage_auth == "header"


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"RENTAL_MYPAGE_AUTH": "basic"}, "RENTAL_MYPAGE_AUTH"),
        ({"RENTAL_MYPAGE_PORT": "0"}, "RENTAL_MYPAGE_PORT"),
        ({"RENTAL_MYPAGE_TOKEN_SECRET": "short"}, "RENTAL_MYPAGE_TOKEN_SECRET"),
        ({"RENTAL_MYPAGE_TOKEN_SECRET_FILE": "/nonexistent/key"}, "RENTAL_MYPAGE_TOKEN_SECRET_FILE"),
        ({"RENTAL_MYPAGE_IDENTITY_HEADER": "X Customer"}, "RENTAL_MYPAGE_IDENTITY_HEADER"),
        ({"RENTAL_MYPAGE_ENABLED": "maybe"}, "RENTAL_MYPAGE_ENABLED"),
        ({"RENTAL_NAMESPACES": "Not_A_Namespace"}, "RENTAL_NAMESPACES"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    assert _error(environ).startswith(f"configuration error: {variable}:")


def test_a_short_secret_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("short\n")
    assert "at least 32" in _error({"RENTAL_MYPAGE_TOKEN_SECRET_FILE": str(key)})


def test_both_secret_sources_at_once_are_refused(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(KEY)
    message = _error({"RENTAL_MYPAGE_TOKEN_SECRET": KEY, "RENTAL_MYPAGE_TOKEN_SECRET_FILE": str(key)})
    assert "not both" in message


def test_the_secret_is_never_echoed() -> None:
    assert "shortsecret" not in _error({"RENTAL_MYPAGE_TOKEN_SECRET": "shortsecret"})
