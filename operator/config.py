"""The operator's configuration, read once at start-up from `RENTAL_*` environment variables.

CONTRACT §3 names the variables; this module is their single definition (types, defaults, bounds), so a
missing or malformed setting stops start-up with one line naming the variable and the rule it broke,
instead of failing later inside a handler. Called by `rental_operator.cli` and passed down from there.
"""

from __future__ import annotations

import datetime
import itertools
import os
import pathlib
import re
import ssl
from collections.abc import Mapping
from typing import Final, Literal

import pydantic
import pydantic_settings

__all__ = [
    "FILE_SECRETS",
    "MIN_TOKEN_SECRET_LENGTH",
    "PARTNERS",
    "ConfigError",
    "MyPageSettings",
    "Partner",
    "Settings",
    "load",
    "load_mypage",
    "parse_duration",
    "read_secret_file",
]

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# What an `Authorization: Bearer <key>` header can carry unchanged: visible ASCII, no whitespace.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
# Durations as operators write them elsewhere (kubectl, Prometheus): a whole number and a unit.
_DURATION = re.compile(r"(?P<count>[0-9]{1,9})(?P<unit>ms|s|m|h|d|w)")
_UNITS: Final = {
    "ms": datetime.timedelta(milliseconds=1),
    "s": datetime.timedelta(seconds=1),
    "m": datetime.timedelta(minutes=1),
    "h": datetime.timedelta(hours=1),
    "d": datetime.timedelta(days=1),
    "w": datetime.timedelta(weeks=1),
}

Partner = Literal["payments", "shipping", "sms"]
PARTNERS: Final[tuple[Partner, ...]] = ("payments", "shipping", "sms")
# Settings that may come from a file instead (`RENTAL_<NAME>_FILE`, a mounted Secret): the file is
# read once at start-up, so the key never has to sit in the pod's environment or its spec.
FILE_SECRETS: Final = ("payment_api_key", "shipping_api_key", "sms_api_key")


class ConfigError(Exception):
    """A setting is missing or malformed; `str()` is one line naming the variable."""


class Settings(pydantic_settings.BaseSettings):
    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix="RENTAL_", frozen=True, extra="ignore", case_sensitive=False
    )

    payment_url: pydantic.HttpUrl = pydantic.Field(description="Base URL of the payment partner API.")
    payment_api_key: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="Bearer key for the payment API; unset sends no Authorization header."
    )
    payment_timeout_seconds: float = pydantic.Field(
        default=2.0, gt=0, le=60, description="Timeout of one payment call; a timeout counts as a failure."
    )
    breaker_failure_threshold: int = pydantic.Field(
        default=5, ge=1, le=1000, description="Consecutive payment failures that open the circuit breaker."
    )
    breaker_reset_seconds: float = pydantic.Field(
        default=30.0, gt=0, le=3600, description="How long the breaker stays open before one trial call."
    )
    deferral_timeout_seconds: float = pydantic.Field(
        default=3600.0,
        gt=0,
        le=30 * 24 * 3600,
        description="How long a rental in PaymentDeferred keeps its reserved unit before it is rejected.",
    )
    payment_retry_seconds: float = pydantic.Field(
        default=5.0, gt=0, le=3600, description="How often deferred payments are retried."
    )
    shipping_url: pydantic.HttpUrl = pydantic.Field(description="Base URL of the shipping partner API.")
    shipping_api_key: pydantic.SecretStr | None = pydantic.Field(default=None)
    shipping_poll_seconds: float = pydantic.Field(
        default=5.0, gt=0, le=3600, description="How often an active shipment's progress is polled."
    )
    sms_url: pydantic.HttpUrl | None = pydantic.Field(
        default=None, description="Base URL of the SMS partner API; unset logs messages instead."
    )
    sms_api_key: pydantic.SecretStr | None = pydantic.Field(default=None)
    partner_ca_bundle: pathlib.Path | None = pydantic.Field(
        default=None,
        description=(
            "PEM file of the CAs that partners' https certificates are verified against; unset: the "
            "system's trust store. Verification is never turned off."
        ),
    )
    payment_ca_bundle: pathlib.Path | None = pydantic.Field(
        default=None, description="CA bundle for the payment partner only (overrides partner_ca_bundle)."
    )
    shipping_ca_bundle: pathlib.Path | None = pydantic.Field(
        default=None, description="CA bundle for the shipping partner only (overrides partner_ca_bundle)."
    )
    sms_ca_bundle: pathlib.Path | None = pydantic.Field(
        default=None, description="CA bundle for the SMS partner only (overrides partner_ca_bundle)."
    )
    billing_period: str = pydantic.Field(
        default="month",
        description=(
            "The length of a billing period: `month` (calendar months counted from the anchor), or a "
            "fixed duration such as `30s` for demos and tests."
        ),
    )
    dunning_schedule: str = pydantic.Field(
        default="1d,3d,5d,7d,9d,11d,14d",
        description=(
            "The retries of a declined monthly charge, as delays after its due time, in increasing "
            "order; `none` for no retries. The default is 8 attempts within 14 days, as Stripe recommends."
        ),
    )
    withdrawal_period: str = pydantic.Field(
        default="14d",
        description="How long after delivery a cancellation is a withdrawal: every charge refunded.",
    )
    payment_history: int = pydantic.Field(
        default=3,
        ge=1,
        le=1000,
        description="Settled Payments kept per Rental; older ones are deleted once billing records them.",
    )
    default_language: Literal["ko", "en"] = pydantic.Field(
        default="ko",
        description=(
            "The language of a customer's text messages when their Rental has no spec.customer.language: "
            "`ko` (Korean) or `en` (English)."
        ),
    )
    metrics_port: int = pydantic.Field(default=9090, ge=1, le=65535)
    metrics_address: str = pydantic.Field(
        default="0.0.0.0",  # scraped from outside the pod
        min_length=1,
        description="Address the metrics endpoint binds (127.0.0.1 to keep it local).",
    )
    mypage_port: int = pydantic.Field(default=8080, ge=1, le=65535)
    namespaces: str | None = pydantic.Field(
        default=None, description="Comma-separated namespaces to watch; unset watches all namespaces."
    )

    @pydantic.field_validator("namespaces")
    @classmethod
    def _namespaces_are_names(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("must list at least one namespace when set")
        for name in names:
            if not _NAMESPACE.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid namespace name (RFC 1123 label)")
        return ",".join(names)

    @pydantic.field_validator("billing_period")
    @classmethod
    def _period_is_month_or_duration(cls, value: str) -> str:
        if value.strip() != "month":
            parse_duration(value)
        return value.strip()

    @pydantic.field_validator("dunning_schedule")
    @classmethod
    def _schedule_is_increasing(cls, value: str) -> str:
        _parse_schedule(value)
        return value

    @pydantic.field_validator("withdrawal_period")
    @classmethod
    def _withdrawal_is_a_duration(cls, value: str) -> str:
        if parse_duration(value, allow_zero=True) < datetime.timedelta(0):
            raise ValueError("must not be negative")
        return value

    @property
    def billing_period_length(self) -> datetime.timedelta | None:
        """The fixed length of a billing period; None: calendar months."""
        return None if self.billing_period == "month" else parse_duration(self.billing_period)

    @property
    def dunning_delays(self) -> tuple[datetime.timedelta, ...]:
        """The delays after a declined charge's due time at which it is retried."""
        return _parse_schedule(self.dunning_schedule)

    @property
    def withdrawal_window(self) -> datetime.timedelta:
        return parse_duration(self.withdrawal_period, allow_zero=True)

    @pydantic.field_validator("payment_api_key", "shipping_api_key", "sms_api_key")
    @classmethod
    def _key_fits_a_header(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        # Refused here, at start-up, rather than by the first request: requests would quote the whole
        # header (the key) in its error.
        if value is not None and not _HEADER_SAFE.fullmatch(value.get_secret_value()):
            raise ValueError("an API key must be visible ASCII characters without spaces")
        return value

    @pydantic.field_validator("partner_ca_bundle", "payment_ca_bundle", "shipping_ca_bundle", "sms_ca_bundle")
    @classmethod
    def _bundle_has_certificates(cls, value: pathlib.Path | None) -> pathlib.Path | None:
        if value is None:
            return None
        try:
            # Bytes: bundles such as certifi's carry UTF-8 comments between the certificates.
            data = value.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read {value}: {_reason(error)}") from None
        if _PEM_CERTIFICATE.encode() not in data:
            raise ValueError(f"{value} holds no PEM certificate ({_PEM_CERTIFICATE})")
        try:
            # The same parser the partner calls use, so a bundle that loads here works there.
            ssl.create_default_context(cafile=str(value))
        except ssl.SSLError as error:
            raise ValueError(f"{value} is not a usable CA bundle: {error.reason or error}") from None
        return value

    @property
    def namespace_list(self) -> list[str]:
        """The namespaces to watch; empty means the whole cluster."""
        return self.namespaces.split(",") if self.namespaces else []

    def ca_bundle(self, partner: Partner) -> str | None:
        """The CA bundle `partner`'s certificate is checked against; None: the system's trust store."""
        own = {
            "payments": self.payment_ca_bundle,
            "shipping": self.shipping_ca_bundle,
            "sms": self.sms_ca_bundle,
        }
        chosen = own[partner] or self.partner_ca_bundle
        return str(chosen) if chosen is not None else None


def parse_duration(text: str, *, allow_zero: bool = False) -> datetime.timedelta:
    """A duration written as units with whole numbers, largest first: `30s`, `14d`, `1h30m`, `500ms`.

    Raises ValueError with the rule in words, which `load` turns into one line naming the variable.
    """
    cleaned = text.strip()
    total = datetime.timedelta(0)
    position = 0
    while position < len(cleaned):
        match = _DURATION.match(cleaned, position)
        if match is None:
            raise ValueError(
                f"{text!r} is not a duration: write a whole number and a unit (ms, s, m, h, d, w), "
                "such as 30s, 14d or 1h30m"
            )
        total += int(match["count"]) * _UNITS[match["unit"]]
        position = match.end()
    if not cleaned:
        raise ValueError("is empty: write a duration such as 30s or 14d")
    if total <= datetime.timedelta(0) and not allow_zero:
        raise ValueError(f"{text!r} must be longer than zero")
    return total


def _parse_schedule(text: str) -> tuple[datetime.timedelta, ...]:
    if text.strip() == "none":
        return ()
    delays = tuple(parse_duration(part) for part in text.split(",") if part.strip())
    if any(later <= earlier for earlier, later in itertools.pairwise(delays)):
        raise ValueError(f"{text!r}: the delays must increase (each is counted from the due time)")
    return delays


def read_secret_file(path: str, *, variable: str) -> str:
    """The secret in the file at `path` without its trailing newline, or a `ConfigError` naming `variable`.

    Files made from Secrets (`kubectl create secret --from-file`, an editor) often end in a newline
    that is not part of the key. Nothing of the file's content is ever put in an error message.
    """
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"configuration error: {variable}: cannot read {path}: {_reason(error)}") from None
    value = text.rstrip("\r\n")
    if not value.strip():
        raise ConfigError(f"configuration error: {variable}: {path} is empty")
    return value


def _reason(error: OSError | UnicodeDecodeError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    return error.strerror or type(error).__name__


def _read_files(values: dict[str, str]) -> set[str]:
    """Replace each `<name>_file` of `FILE_SECRETS` in `values` by the file's content; the names read."""
    read: set[str] = set()
    for name in FILE_SECRETS:
        path = values.pop(f"{name}_file", None)
        if path is None:
            continue
        variable = f"RENTAL_{name.upper()}"
        if name in values:
            raise ConfigError(
                f"configuration error: {variable}_FILE: set {variable} or {variable}_FILE, not both"
            )
        values[name] = read_secret_file(path, variable=f"{variable}_FILE")
        read.add(name)
    return read


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment), keys from their files."""
    values = _from_mapping(os.environ if environ is None else environ)
    from_files = _read_files(values)
    try:
        return Settings.model_validate(values)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        variable = "RENTAL_" + str(first["loc"][0]).upper() if first["loc"] else "RENTAL_*"
        if first["loc"] and first["loc"][0] in from_files:
            variable += "_FILE"
        problem = "required but not set" if first["type"] == "missing" else first["msg"]
        problem = problem.removeprefix("Value error, ")
        field = str(first["loc"][0]) if first["loc"] else ""
        # Echo what was given only for numbers: a URL may carry credentials, a key is a secret.
        numeric = field in Settings.model_fields and Settings.model_fields[field].annotation in (int, float)
        value = f" (got {first['input']!r})" if first["type"] != "missing" and numeric else ""
        more = f"; {len(error.errors()) - 1} more problem(s)" if len(error.errors()) > 1 else ""
        raise ConfigError(f"configuration error: {variable}: {problem}{value}{more}") from None


def _from_mapping(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        key[len("RENTAL_") :].lower(): value
        for key, value in environ.items()
        if key.upper().startswith("RENTAL_") and value != ""
    }


# --- MyPage (CONTRACT §4): the read side's own settings ------------------------------------------------
# A class of their own because `rental-operator mypage` runs without the partner URLs the operator
# needs; the operator loads both. Called by `rental_operator.cli` and `rental_operator.mypage`.

MIN_TOKEN_SECRET_LENGTH: Final = 32


class MyPageSettings(pydantic_settings.BaseSettings):
    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix="RENTAL_", frozen=True, extra="ignore", case_sensitive=False
    )

    mypage_port: int = pydantic.Field(default=8080, ge=1, le=65535, description="Port MyPage listens on.")
    mypage_host: str = pydantic.Field(
        default="0.0.0.0", min_length=1, description="Address MyPage listens on (0.0.0.0: every interface)."
    )
    mypage_enabled: bool = pydantic.Field(
        default=True, description="Serve MyPage inside the operator (the `mypage` command always serves)."
    )
    mypage_auth: Literal["token", "header", "none"] = pydantic.Field(
        default="token",
        description=(
            "How a customer is identified: `token` (signed per-customer links and bearer tokens), "
            "`header` (an auth proxy in front sets RENTAL_MYPAGE_IDENTITY_HEADER), or `none` (local demos)."
        ),
    )
    mypage_token_secret: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="HMAC-SHA256 key that signs customer tokens (token mode)."
    )
    mypage_token_secret_file: pydantic.FilePath | None = pydantic.Field(
        default=None, description="File holding the token key instead (a mounted Secret)."
    )
    mypage_token_ttl_seconds: int = pydantic.Field(
        default=30 * 24 * 3600, ge=60, le=366 * 24 * 3600, description="Lifetime of a minted token."
    )
    mypage_identity_header: str = pydantic.Field(
        default="X-Customer-Id",
        pattern=r"^[A-Za-z0-9-]+$",
        description="Header carrying the authenticated customer id (header mode).",
    )
    mypage_public_url: pydantic.HttpUrl = pydantic.Field(
        default=pydantic.HttpUrl("http://localhost:8080"),
        description="Base URL customers reach MyPage at, for minted links.",
    )
    namespaces: str | None = pydantic.Field(
        default=None, description="Comma-separated namespaces to read; unset reads all namespaces."
    )
    web_enabled: bool = pydantic.Field(
        default=True,
        description=(
            "Serve the customer web app's commands (apply, cancel) beside MyPage; false: the catalog "
            "is shown, and applying or cancelling answers 503."
        ),
    )
    web_open_applications: int = pydantic.Field(
        default=3,
        ge=1,
        le=100,
        description="Most unsettled applications (not yet in force, not yet refused) one customer may have.",
    )

    @pydantic.field_validator("namespaces")
    @classmethod
    def _namespaces_are_names(cls, value: str | None) -> str | None:
        return Settings._namespaces_are_names(value)  # the same rule as the operator's

    @pydantic.field_validator("mypage_token_secret")
    @classmethod
    def _secret_is_long_enough(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_TOKEN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_SECRET_LENGTH} characters")
        return value

    @pydantic.field_validator("mypage_token_secret_file")
    @classmethod
    def _secret_file_is_long_enough(cls, value: pathlib.Path | None) -> pathlib.Path | None:
        if value is None:
            return None
        try:
            text = value.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            # One line naming the variable, not a traceback: e.g. a Secret mounted for another user.
            raise ValueError(f"cannot read {value}: {_reason(error)}") from None
        if len(text.strip()) < MIN_TOKEN_SECRET_LENGTH:
            raise ValueError(f"the file must hold a key of at least {MIN_TOKEN_SECRET_LENGTH} characters")
        return value

    @pydantic.model_validator(mode="after")
    def _one_secret(self) -> MyPageSettings:
        if self.mypage_token_secret is not None and self.mypage_token_secret_file is not None:
            raise ValueError("set RENTAL_MYPAGE_TOKEN_SECRET or RENTAL_MYPAGE_TOKEN_SECRET_FILE, not both")
        return self

    @property
    def namespace_list(self) -> list[str]:
        """The namespaces to read; empty means the whole cluster."""
        return self.namespaces.split(",") if self.namespaces else []

    def token_secret(self) -> bytes | None:
        """The token key (read from the file each call: call once at start-up), or None if unset."""
        if self.mypage_token_secret is not None:
            return self.mypage_token_secret.get_secret_value().encode()
        if self.mypage_token_secret_file is not None:
            return self.mypage_token_secret_file.read_text().strip().encode()
        return None


def load_mypage(environ: Mapping[str, str] | None = None, *, require_secret: bool = False) -> MyPageSettings:
    """Read MyPage's settings; `require_secret` refuses token mode without a key (the `mypage` command)."""
    try:
        if environ is None:
            settings = MyPageSettings()
        else:
            settings = MyPageSettings.model_validate(_from_mapping(environ))
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        variable = "RENTAL_" + str(first["loc"][0]).upper() if first["loc"] else "RENTAL_MYPAGE_*"
        problem = first["msg"].removeprefix("Value error, ")
        shown = "SECRET" not in variable and first["type"] != "missing" and bool(first["loc"])
        value = f" (got {first['input']!r})" if shown else ""
        raise ConfigError(f"configuration error: {variable}: {problem}{value}") from None
    if require_secret and settings.mypage_auth == "token" and settings.token_secret() is None:
        raise ConfigError(
            "configuration error: RENTAL_MYPAGE_TOKEN_SECRET: required when RENTAL_MYPAGE_AUTH=token"
            " (or set RENTAL_MYPAGE_TOKEN_SECRET_FILE, or RENTAL_MYPAGE_AUTH=header behind an auth proxy)"
        )
    return settings
