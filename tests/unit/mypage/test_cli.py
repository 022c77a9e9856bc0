"""`rental-operator mypage-link` and the `mypage` command's refusal to start without its key."""

from __future__ import annotations

import logging
import time
import urllib.parse

import pytest

from rental_operator import cli
from rental_operator.mypage import auth

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("RENTAL_MYPAGE_AUTH", "RENTAL_MYPAGE_TOKEN_SECRET", "RENTAL_MYPAGE_TOKEN_SECRET_FILE"):
        monkeypatch.delenv(variable, raising=False)


def test_mypage_link_prints_a_signed_link(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RENTAL_MYPAGE_TOKEN_SECRET", KEY)
    monkeypatch.setenv("RENTAL_MYPAGE_PUBLIC_URL", "https://my.example")
    assert cli.main(["mypage-link", "--customer", "cust-7", "--ttl-seconds", "3600"]) == 0
    link = urllib.parse.urlsplit(capsys.readouterr().out.strip())
    assert (link.scheme, link.netloc, link.path) == ("https", "my.example", "/mypage/cust-7")
    token = urllib.parse.parse_qs(link.query)["token"][0]
    assert auth.verify(KEY.encode(), token) == "cust-7"
    expires = int(token.split(".")[1])
    assert time.time() + 3500 < expires <= time.time() + 3600


def test_mypage_link_token_only(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RENTAL_MYPAGE_TOKEN_SECRET", KEY)
    assert cli.main(["mypage-link", "--customer", "cust-7", "--token-only"]) == 0
    assert auth.verify(KEY.encode(), capsys.readouterr().out.strip()) == "cust-7"


@pytest.mark.parametrize("command", [["mypage-link", "--customer", "c"], ["mypage"]])
def test_without_a_key_the_commands_stop_with_one_line(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(command) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("configuration error: RENTAL_MYPAGE_TOKEN_SECRET: required")
    assert "\n" not in error


def test_mypage_link_refuses_header_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RENTAL_MYPAGE_AUTH", "header")
    assert cli.main(["mypage-link", "--customer", "c"]) == 2
    assert "not token" in capsys.readouterr().err


def test_mypage_refuses_its_own_port_for_metrics(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Metrics stay off the port customers reach: the public Service would publish them (issue 13)."""
    monkeypatch.setenv("RENTAL_MYPAGE_TOKEN_SECRET", KEY)
    monkeypatch.setenv("RENTAL_MYPAGE_PORT", "18080")
    with caplog.at_level(logging.ERROR):
        assert cli.main(["mypage", "--metrics-port", "18080"]) == 2
    assert "--metrics-port must differ from RENTAL_MYPAGE_PORT" in caplog.text
