"""The operator's configuration, read once at start-up from `RENTAL_*` environment variables.

CONTRACT §3 names the variables; this module is their single definition (types, defaults, bounds), so a
missing or malformed setting stops start-up with one line naming the variable and the rule it broke,
instead of failing later inside a handler. Called by `rental_operator.cli` and passed down from there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pydantic
import pydantic_settings

__all__ = ["ConfigError", "Settings", "load"]

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


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

    @property
    def namespace_list(self) -> list[str]:
        """The namespaces to watch; empty means the whole cluster."""
        return self.namespaces.split(",") if self.namespaces else []


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment)."""
    try:
        if environ is None:
            return Settings()  # required fields come from the environment
        return Settings.model_validate(_from_mapping(environ))
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        variable = "RENTAL_" + str(first["loc"][0]).upper() if first["loc"] else "RENTAL_*"
        problem = "required but not set" if first["type"] == "missing" else first["msg"]
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
