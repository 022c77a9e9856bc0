"""Markup and control characters in what customers and administrators write, end to end.

A Purifier whose display name is markup and a Rental whose customer name and address carry markup,
control characters, a bidirectional override and a very long tail go through the real operator:
the text messages the gateway received are one clean line within three SMS segments, with the
markup kept as plain characters (SMS has no markup); MyPage shows the markup escaped, as text.
"""

from __future__ import annotations

import html.parser
import unicodedata
import urllib.request
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.partners import sms

NAME = "<b>Kim</b>\x00\x1b[31m\u202eevil\u202c " + "가" * 150
ADDRESS = "Seoul <script>alert(1)</script>\r\n'; DROP TABLE rentals; --\x07"
DISPLAY = '<img src=x onerror="alert(1)">AquaPure\u2028300'


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.scripts: list[str | None] = []  # the src of every script element
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(dict(attrs).get("src"))

    def handle_data(self, data: str) -> None:
        self.text += data


def test_texts_are_clean_and_bounded_and_the_page_escapes_markup(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator = operator_factory(gateway, mypage_auth="none")
    purifier = testkit.purifier("aqua", stock=2)
    purifier["spec"]["displayName"] = DISPLAY
    cluster.create(purifier)
    rental = testkit.rental("hostile", "aqua", customer="cust-hostile")
    # English texts (Korean is the default): the prefix checked below is the English one.
    rental["spec"]["customer"].update(name=NAME, address=ADDRESS, language="en")
    cluster.create(rental)

    testkit.wait_for(
        lambda: (cluster.get("rentals", "hostile") or {}).get("status", {}).get("notifiedSeq", 0) >= 3,
        timeout=60,
        what="three texts sent for the hostile rental",
    )
    delivery = cluster.get("deliveries", "hostile")
    assert delivery is not None and delivery["spec"]["address"] == ADDRESS  # kept as written for the carrier

    texts = [str(message["text"]) for message in gateway.ledger()["messages"]]
    assert len(texts) >= 3
    for text in texts:
        assert text.startswith("[PureRental] <b>Kim</b> [31mevil 가"), text  # markup as characters
        assert all(unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp") for char in text), repr(text)
        limit = 3 * (153 if sms.sms_encoding(text) == "gsm-7" else 67)
        assert sms.sms_length(text) <= limit, (sms.sms_length(text), text)
        assert "가" * 40 not in text  # the name was capped
    assert any("AquaPure 300" in text and "<img" in text for text in texts), texts

    port = operator.mypage_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/mypage/cust-hostile", timeout=10) as answer:
        page = answer.read().decode("utf-8")
    parsed = _Page()
    parsed.feed(page)
    # No tag from the hostile values: the only script is the page's own, from this origin.
    assert "img" not in parsed.tags
    assert parsed.scripts in ([], ["/static/mypage.js"]), parsed.scripts
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;AquaPure 300" in page
    assert '<img src=x onerror="alert(1)">AquaPure 300' in parsed.text  # shown to the reader as text
    assert "\u2028" not in page
