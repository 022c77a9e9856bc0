"""config: CONTRACT §3's variables, their defaults, and one clear line for a missing or bad setting."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pydantic
import pytest

from rental_devenv import certs
from rental_operator import config

URLS = {"RENTAL_PAYMENT_URL": "http://payments.test:8000", "RENTAL_SHIPPING_URL": "http://shipping.test:8000"}
SECRET = "sk-live-9f8e7d6c5b4a"


def _load(**variables: str) -> config.Settings:
    return config.load({**URLS, **variables})


def _error(environ: dict[str, str]) -> str:
    with pytest.raises(config.ConfigError) as caught:
        config.load(environ)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith("configuration error: RENTAL_")
    return message


def test_defaults() -> None:
    settings = _load()
    assert str(settings.payment_url) == "http://payments.test:8000/"
    assert str(settings.shipping_url) == "http://shipping.test:8000/"
    assert settings.payment_api_key is None
    assert settings.payment_timeout_seconds == 2
    assert settings.breaker_failure_threshold == 5
    assert settings.breaker_reset_seconds == 30
    assert settings.deferral_timeout_seconds == 3600
    assert settings.sms_url is None
    assert settings.metrics_port == 9090
    assert settings.mypage_port == 8080
    assert settings.namespaces is None
    assert settings.namespace_list == []


def test_every_contract_variable_is_read() -> None:
    settings = _load(
        RENTAL_PAYMENT_API_KEY=SECRET,
        RENTAL_PAYMENT_TIMEOUT_SECONDS="1.5",
        RENTAL_BREAKER_FAILURE_THRESHOLD="3",
        RENTAL_BREAKER_RESET_SECONDS="10",
        RENTAL_DEFERRAL_TIMEOUT_SECONDS="120",
        RENTAL_SMS_URL="http://sms.test",
        RENTAL_METRICS_PORT="9191",
        RENTAL_MYPAGE_PORT="8181",
        RENTAL_NAMESPACES="shop",
    )
    assert settings.payment_api_key is not None
    assert settings.payment_api_key.get_secret_value() == SECRET
    assert settings.payment_timeout_seconds == 1.5
    assert settings.breaker_failure_threshold == 3
    assert settings.breaker_reset_seconds == 10
    assert settings.deferral_timeout_seconds == 120
    assert str(settings.sms_url) == "http://sms.test/"
    assert (settings.metrics_port, settings.mypage_port) == (9191, 8181)
    assert settings.namespace_list == ["shop"]


def test_api_keys_do_not_show_in_the_settings_repr() -> None:
    settings = _load(RENTAL_PAYMENT_API_KEY=SECRET, RENTAL_SHIPPING_API_KEY=SECRET, RENTAL_SMS_API_KEY=SECRET)
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_settings_are_frozen() -> None:
    settings = _load()
    with pytest.raises(pydantic.ValidationError):
        settings.metrics_port = 1  # type: ignore[misc]


def test_unrelated_and_unknown_variables_are_ignored() -> None:
    settings = _load(PATH="/usr/bin", HOME="/root", RENTAL_SOMETHING_NEW="x")
    assert settings.metrics_port == 9090


def test_variable_names_are_case_insensitive() -> None:
    settings = config.load(
        {key.lower(): value for key, value in URLS.items()} | {"rental_Metrics_Port": "9999"}
    )
    assert settings.metrics_port == 9999


def test_an_empty_value_counts_as_unset() -> None:
    assert _load(RENTAL_METRICS_PORT="", RENTAL_SMS_URL="").metrics_port == 9090
    message = _error({**URLS, "RENTAL_PAYMENT_URL": ""})
    assert "RENTAL_PAYMENT_URL" in message
    assert "required but not set" in message


# --- missing settings -------------------------------------------------------------------------------------
def test_nothing_set_names_the_payment_url_first() -> None:
    message = _error({})
    assert message == ("configuration error: RENTAL_PAYMENT_URL: required but not set; 1 more problem(s)")


def test_missing_shipping_url_is_named() -> None:
    message = _error({"RENTAL_PAYMENT_URL": URLS["RENTAL_PAYMENT_URL"]})
    assert message == "configuration error: RENTAL_SHIPPING_URL: required but not set"


def test_missing_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("RENTAL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RENTAL_SHIPPING_URL", URLS["RENTAL_SHIPPING_URL"])
    with pytest.raises(config.ConfigError) as caught:
        config.load()
    assert str(caught.value) == "configuration error: RENTAL_PAYMENT_URL: required but not set"


def test_read_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("RENTAL_"):
            monkeypatch.delenv(key)
    for key, value in URLS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RENTAL_DEFERRAL_TIMEOUT_SECONDS", "60")
    settings = config.load()
    assert settings.deferral_timeout_seconds == 60
    assert str(settings.payment_url) == "http://payments.test:8000/"


def test_error_does_not_chain_the_validation_error() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load({**URLS, "RENTAL_METRICS_PORT": "x"})
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


# --- malformed settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RENTAL_METRICS_PORT", "ninety"),
        ("RENTAL_METRICS_PORT", "70000"),
        ("RENTAL_MYPAGE_PORT", "0"),
        ("RENTAL_PAYMENT_TIMEOUT_SECONDS", "two"),
        ("RENTAL_PAYMENT_TIMEOUT_SECONDS", "0"),
        ("RENTAL_PAYMENT_TIMEOUT_SECONDS", "-1"),
        ("RENTAL_BREAKER_FAILURE_THRESHOLD", "2.5"),
        ("RENTAL_BREAKER_FAILURE_THRESHOLD", "0"),
        ("RENTAL_BREAKER_RESET_SECONDS", "forever"),
        ("RENTAL_DEFERRAL_TIMEOUT_SECONDS", "1h"),
        ("RENTAL_DEFERRAL_TIMEOUT_SECONDS", "0"),
    ],
)
def test_malformed_value_names_the_variable_and_the_value(variable: str, value: str) -> None:
    message = _error({**URLS, variable: value})
    assert message.startswith(f"configuration error: {variable}: ")
    assert repr(value) in message
    assert "more problem" not in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RENTAL_PAYMENT_URL", "not a url"),
        ("RENTAL_SHIPPING_URL", "ftp//x"),
        ("RENTAL_SMS_URL", "https://user:s3cret@sms example"),
    ],
)
def test_a_malformed_url_is_named_but_not_echoed(variable: str, value: str) -> None:
    # A URL may carry credentials (user:password@host): the message names the variable and the rule.
    message = _error({**URLS, variable: value})
    assert message.startswith(f"configuration error: {variable}: ")
    assert value not in message
    assert "s3cret" not in message


@pytest.mark.parametrize("key", ["RENTAL_PAYMENT_API_KEY", "RENTAL_SHIPPING_API_KEY", "RENTAL_SMS_API_KEY"])
def test_a_malformed_setting_does_not_echo_api_keys(key: str) -> None:
    message = _error({**URLS, key: SECRET, "RENTAL_METRICS_PORT": "abc"})
    assert "RENTAL_METRICS_PORT" in message
    assert SECRET not in message


def test_missing_url_with_keys_set_does_not_echo_them() -> None:
    message = _error({"RENTAL_PAYMENT_API_KEY": SECRET, "RENTAL_SHIPPING_URL": URLS["RENTAL_SHIPPING_URL"]})
    assert "RENTAL_PAYMENT_URL" in message
    assert SECRET not in message


def test_several_problems_are_counted_on_the_same_line() -> None:
    message = _error({"RENTAL_METRICS_PORT": "x", "RENTAL_MYPAGE_PORT": "y"})
    assert message.startswith("configuration error: RENTAL_PAYMENT_URL: required but not set; ")
    assert message.endswith("; 3 more problem(s)")


# --- namespaces ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("shop", ["shop"]),
        ("shop,warehouse", ["shop", "warehouse"]),
        (" shop , warehouse ,", ["shop", "warehouse"]),
        ("a,b-2,c3", ["a", "b-2", "c3"]),
    ],
)
def test_namespaces(value: str, names: list[str]) -> None:
    settings = _load(RENTAL_NAMESPACES=value)
    assert settings.namespace_list == names
    assert settings.namespaces == ",".join(names)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (",", "must list at least one namespace"),
        (" , ", "must list at least one namespace"),
        ("shop,Bad_NS", "'Bad_NS' is not a valid namespace name"),
        ("-shop", "'-shop' is not a valid namespace name"),
        ("a" * 64, "is not a valid namespace name"),
        ("shop/prod", "'shop/prod' is not a valid namespace name"),
    ],
)
def test_bad_namespaces(value: str, problem: str) -> None:
    message = _error({**URLS, "RENTAL_NAMESPACES": value})
    assert message.startswith("configuration error: RENTAL_NAMESPACES: ")
    assert problem in message


def test_longest_valid_namespace() -> None:
    assert _load(RENTAL_NAMESPACES="a" * 63).namespace_list == ["a" * 63]


# --- keys from files (a mounted Secret) -------------------------------------------------------------------
KEYS = ["RENTAL_PAYMENT_API_KEY", "RENTAL_SHIPPING_API_KEY", "RENTAL_SMS_API_KEY"]


@pytest.mark.parametrize("variable", KEYS)
@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\n\n"])
def test_a_key_is_read_from_its_file_without_the_trailing_newline(
    tmp_path: Path, variable: str, ending: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + ending)
    settings = _load(**{f"{variable}_FILE": str(key_file)})
    field = variable.removeprefix("RENTAL_").lower()
    value = getattr(settings, field)
    assert value is not None
    assert value.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


@pytest.mark.parametrize("variable", KEYS)
def test_a_key_and_its_file_together_are_refused(tmp_path: Path, variable: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    message = _error({**URLS, variable: SECRET, f"{variable}_FILE": str(key_file)})
    assert message == f"configuration error: {variable}_FILE: set {variable} or {variable}_FILE, not both"


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot read"), ("", "is empty"), ("\n", "is empty"), (b"\xff\xfe\x00", "not UTF-8 text")],
)
def test_an_unreadable_or_empty_key_file_is_named(
    tmp_path: Path, content: str | bytes | None, problem: str
) -> None:
    key_file = tmp_path / "key"
    if isinstance(content, bytes):
        key_file.write_bytes(content)
    elif content is not None:
        key_file.write_text(content)
    message = _error({**URLS, "RENTAL_PAYMENT_API_KEY_FILE": str(key_file)})
    assert message.startswith("configuration error: RENTAL_PAYMENT_API_KEY_FILE: ")
    assert problem in message
    assert str(key_file) in message


def test_a_directory_is_not_a_key_file(tmp_path: Path) -> None:
    message = _error({**URLS, "RENTAL_SMS_API_KEY_FILE": str(tmp_path)})
    assert message.startswith("configuration error: RENTAL_SMS_API_KEY_FILE: cannot read ")


@pytest.mark.parametrize("bad", ["two words", "tab\there", "ключ", "inner\nnewline"])
def test_a_key_a_header_cannot_carry_is_refused_without_echoing_it(tmp_path: Path, bad: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(bad + "\n")
    message = _error({**URLS, "RENTAL_SHIPPING_API_KEY_FILE": str(key_file)})
    assert message.startswith("configuration error: RENTAL_SHIPPING_API_KEY_FILE: ")
    assert "visible ASCII" in message
    assert bad not in message
    message = _error({**URLS, "RENTAL_SHIPPING_API_KEY": bad})
    assert message.startswith("configuration error: RENTAL_SHIPPING_API_KEY: ")
    assert bad not in message


# --- CA bundles -------------------------------------------------------------------------------------------
def _ca(tmp_path: Path, name: str) -> Path:
    return certs.ensure_pki(tmp_path / name).ca_cert


def test_a_bundle_with_utf8_comments_loads(tmp_path: Path) -> None:
    # certifi's bundle has comments such as "# Issuer: CN=NetLock Arany (Class Gold) Főtanúsítvány".
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("# Issuer: CN=Főtanúsítvány\n" + _ca(tmp_path, "ca").read_text(), encoding="utf-8")
    assert _load(RENTAL_PARTNER_CA_BUNDLE=str(bundle)).ca_bundle("sms") == str(bundle)


def test_no_bundle_means_the_system_trust_store() -> None:
    settings = _load()
    assert [settings.ca_bundle(partner) for partner in config.PARTNERS] == [None, None, None]


def test_the_shared_bundle_and_a_per_partner_override(tmp_path: Path) -> None:
    shared, own = _ca(tmp_path, "shared"), _ca(tmp_path, "own")
    settings = _load(RENTAL_PARTNER_CA_BUNDLE=str(shared), RENTAL_SMS_CA_BUNDLE=str(own))
    assert settings.ca_bundle("payments") == str(shared)
    assert settings.ca_bundle("shipping") == str(shared)
    assert settings.ca_bundle("sms") == str(own)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        ("", "holds no PEM certificate"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "holds no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "not a usable CA bundle"),
    ],
)
@pytest.mark.parametrize("variable", ["RENTAL_PARTNER_CA_BUNDLE", "RENTAL_PAYMENT_CA_BUNDLE"])
def test_a_bad_bundle_stops_start_up_naming_the_variable(
    tmp_path: Path, content: str | None, problem: str, variable: str
) -> None:
    bundle = tmp_path / "bundle.pem"
    if content is not None:
        bundle.write_text(content)
    message = _error({**URLS, variable: str(bundle)})
    assert message.startswith(f"configuration error: {variable}: ")
    assert problem in message


# --- MyPage's token key file ------------------------------------------------------------------------------
def test_an_unreadable_token_key_file_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "token-secret"
    key.write_text("k" * 40)

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    # As a Secret volume with defaultMode 0400 is to a non-root user without fsGroup.
    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(config.ConfigError) as caught:
        config.load_mypage({"RENTAL_MYPAGE_TOKEN_SECRET_FILE": str(key)})
    assert str(caught.value) == (
        f"configuration error: RENTAL_MYPAGE_TOKEN_SECRET_FILE: cannot read {key}: Permission denied"
    )


# --- billing (CONTRACT §3: RENTAL_BILLING_PERIOD, RENTAL_DUNNING_SCHEDULE, ...) -----------------------
def test_billing_defaults_are_calendar_months_stripes_retries_and_14_days() -> None:
    settings = _load()
    day = datetime.timedelta(days=1)
    assert settings.billing_period_length is None
    assert settings.dunning_delays == tuple(n * day for n in (1, 3, 5, 7, 9, 11, 14))
    assert settings.withdrawal_window == 14 * day
    assert settings.payment_history == 3


def test_billing_durations_for_demos_and_tests() -> None:
    settings = config.load(
        {
            **URLS,
            "RENTAL_BILLING_PERIOD": "30s",
            "RENTAL_DUNNING_SCHEDULE": "2s, 4s,1m",
            "RENTAL_WITHDRAWAL_PERIOD": "1h30m",
            "RENTAL_PAYMENT_HISTORY": "5",
        }
    )
    assert settings.billing_period_length == datetime.timedelta(seconds=30)
    assert settings.dunning_delays == (
        datetime.timedelta(seconds=2),
        datetime.timedelta(seconds=4),
        datetime.timedelta(minutes=1),
    )
    assert settings.withdrawal_window == datetime.timedelta(minutes=90)
    assert settings.payment_history == 5


def test_no_dunning_and_no_withdrawal_window_can_be_chosen() -> None:
    settings = config.load({**URLS, "RENTAL_DUNNING_SCHEDULE": "none", "RENTAL_WITHDRAWAL_PERIOD": "0s"})
    assert settings.dunning_delays == ()
    assert settings.withdrawal_window == datetime.timedelta(0)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RENTAL_BILLING_PERIOD", "monthly", "not a duration"),
        ("RENTAL_BILLING_PERIOD", "0s", "longer than zero"),
        ("RENTAL_BILLING_PERIOD", "-5s", "not a duration"),
        ("RENTAL_DUNNING_SCHEDULE", "1d,3x", "not a duration"),
        ("RENTAL_DUNNING_SCHEDULE", "3d,1d", "must increase"),
        ("RENTAL_DUNNING_SCHEDULE", "1d,1d", "must increase"),
        ("RENTAL_WITHDRAWAL_PERIOD", "two weeks", "not a duration"),
        ("RENTAL_PAYMENT_HISTORY", "0", "greater than or equal to 1"),
    ],
)
def test_a_malformed_billing_setting_names_the_variable_and_the_rule(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(config.ConfigError, match=f"^configuration error: {variable}: .*{says}"):
        config.load({**URLS, variable: value})
