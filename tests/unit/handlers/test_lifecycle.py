"""handlers.lifecycle: what start-up logs of the partner URLs carries no credentials."""

from __future__ import annotations

import pydantic
import pytest

from rental_operator.handlers import lifecycle


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("https://user:s3cret@pay.example.com/v1/", "https://pay.example.com:443"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("https://:token@ship.example.com:8443/base?key=abc", "https://ship.example.com:8443"),
    ],
)
def test_partner_urls_are_logged_without_credentials(url: str, logged: str) -> None:
    assert lifecycle._origin(pydantic.HttpUrl(url)) == logged
