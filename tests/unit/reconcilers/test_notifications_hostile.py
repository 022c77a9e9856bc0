"""reconcilers.notifications with hostile input: property tests of `plain`, `clusters` and `text`.

Names, models, messages and tracking numbers are written by people and partners and may be any
Unicode: markup, quotes, SQL, control characters, bidirectional overrides, zero-width joiners,
combining marks, emoji sequences, flags, lone surrogates, noncharacters, and very long. Whatever
they are, a text is one line of printable characters, bounded, cut only between user-perceived
characters, and still fits the SMS channel after the notifier's cut.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from rental_operator.api import rental as api_rental
from rental_operator.partners import sms
from rental_operator.reconcilers import notifications

PROPERTY = hypothesis.settings(max_examples=300, deadline=None, derandomize=True, database=None)

SPECIALS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"'&;",
    "'; DROP TABLE rentals; --",
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u200f",  # right-to-left mark
    "\u200d",  # zero-width joiner
    "\u200b",  # zero-width space
    "\ufeff",  # byte order mark
    "\u0301\u0301\u0301",  # combining acute accents
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\r\n",
    "\t",
    "\u2028",
    "\u00a0",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # family: ZWJ sequence
    "\U0001f44d\U0001f3fd",  # thumbs up, skin tone
    "\U0001f1f0\U0001f1f7",  # flag KR
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # flag of Scotland
    "홍길동",
    "\u1100\u1161\u11a8",  # a Hangul syllable as conjoining jamo
    "مرحبا",
    "\ud800",  # lone surrogate
    "\uffff",
    "\ufdd0",
    "x" * 300,
]
# Any code point (surrogates come from SPECIALS), interleaved with the special cases.
hostile = st.lists(
    st.one_of(st.sampled_from(SPECIALS), st.text(st.characters(codec=None), max_size=40)), max_size=12
).map("".join)

FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
KEPT_FORMAT = {"\u200d", "\u200c"}


def assert_clean(text: str) -> None:
    for char in text:
        category = unicodedata.category(char)
        assert category not in FORBIDDEN_CATEGORIES, (char, text)
        if category == "Cf":
            assert char in KEPT_FORMAT or 0xE0020 <= ord(char) <= 0xE007F, (char, text)
        if category == "Zs":
            assert char == " ", (char, text)
        assert not (0xFDD0 <= ord(char) <= 0xFDEF or (ord(char) & 0xFFFE) == 0xFFFE), (char, text)
    assert text == text.strip()
    assert "  " not in text
    text.encode("utf-8")  # no lone surrogate left


def boundaries(text: str) -> set[int]:
    ends, position = {0}, 0
    for cluster in notifications.clusters(text):
        position += len(cluster)
        ends.add(position)
    return ends


@PROPERTY
@hypothesis.given(value=hostile, limit=st.integers(min_value=3, max_value=120))
def test_plain_is_clean_bounded_and_cut_between_clusters(value: str, limit: int) -> None:
    out = notifications.plain(value, limit)
    assert_clean(out)
    assert len(out) <= limit
    whole = notifications.plain(value, 10**6)
    if len(whole) <= limit:
        assert out == whole
    else:
        assert out.endswith("...")
        head = out[:-3]
        assert whole.startswith(head)
        assert len(head) in boundaries(whole), (head, whole)
    assert notifications.plain(out, limit) == out  # stable: cleaning twice changes nothing


@PROPERTY
@hypothesis.given(value=hostile)
def test_clusters_cover_the_text_exactly(value: str) -> None:
    parts = list(notifications.clusters(value))
    assert "".join(parts) == value
    assert all(parts)


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("Kim\x00\x1b[31m Jun", 40, "Kim [31m Jun"),
        ("a\u202eevil\u202c b", 40, "aevil b"),
        ("line one\r\nline two\u2028three", 40, "line one line two three"),
        ("<script>alert('x')</script>", 40, "<script>alert('x')</script>"),  # plain text: kept as written
        (
            "\U0001f469\u200d\U0001f469\u200d\U0001f467" * 3,
            12,
            "\U0001f469\u200d\U0001f469\u200d\U0001f467...",
        ),
        ("\U0001f1f0\U0001f1f7\U0001f1ef\U0001f1f5" * 2, 5, "\U0001f1f0\U0001f1f7..."),
        ("e\u0301\u0301\u0301abc", 6, "..."),  # the accented e is one character of 4 code points
        ("e\u0301\u0301\u0301abc", 7, "e\u0301\u0301\u0301abc"),
        ("\u1100\u1161\u11a8\u1100\u1161\u11a8", 5, "..."),
        ("abc\ud800def", 40, "abcdef"),
        ("   ", 40, ""),
    ],
)
def test_plain_examples(value: str, limit: int, expected: str) -> None:
    assert notifications.plain(value, limit) == expected


def test_plain_refuses_a_limit_below_the_ellipsis() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        notifications.plain("abc", 2)


def rental_with(name: str, message: str, tracking: str, rental_name: str) -> api_rental.Rental:
    customer: dict[str, Any] = {"id": "cust-7", "phone": "+821012345678", "address": "Seoul", "name": name}
    return api_rental.Rental.model_validate(
        {
            "metadata": {"name": rental_name, "namespace": "shop", "uid": "uid-1"},
            "spec": {"purifier": "aquapure-300", "customer": customer, "months": 12},
            "status": {
                "phase": "Rejected",
                "payment": {"name": "r1", "phase": "Approved", "amount": 1000, "currency": "KRW"},
                "delivery": {"name": "r1", "phase": "Shipping", "trackingNumber": tracking},
                "history": [
                    {
                        "seq": 1,
                        "kind": "Rental",
                        "phase": "Rejected",
                        "at": "2025-06-01T09:00:00Z",
                        "message": message,
                    }
                ],
            },
        }
    )


def without_surrogates(value: str) -> str:
    return "".join(char for char in value if unicodedata.category(char) != "Cs")


dns_names = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?\Z")


@PROPERTY
@hypothesis.given(
    name=hostile,
    model=hostile,
    message=hostile,
    tracking=hostile,
    rental_name=dns_names,
    kind_phase=st.sampled_from(
        [("Rental", "Rejected"), ("Rental", "Confirmed"), ("Delivery", "Shipping"), ("Rental", "\u202eOdd")]
    ),
)
def test_every_text_is_one_clean_bounded_line_that_fits_the_channel(  # noqa: PLR0917
    name: str, model: str, message: str, tracking: str, rental_name: str, kind_phase: tuple[str, str]
) -> None:
    # The API models refuse lone surrogates (not UTF-8), so none reaches a Rental's fields.
    # and values longer than the schema allows (name 200, message 1024, tracking number 128).
    name, message, tracking = (
        without_surrogates(value)[:limit] for value, limit in ((name, 200), (message, 1024), (tracking, 128))
    )
    rental = rental_with(name, message, tracking, rental_name)
    entry = api_rental.HistoryEntry.model_validate(
        {
            "seq": 1,
            "kind": kind_phase[0],
            "phase": kind_phase[1],
            "at": "2025-06-01T09:00:00Z",
            "message": message,
        }
    )
    text = notifications.text(rental, entry, model)
    assert_clean(text)
    assert len(text) <= notifications.TEXT_LIMIT
    assert text.startswith("[PureRental] ")
    who = notifications.plain(name, notifications.NAME_LIMIT) or "customer"
    assert text.startswith(f"[PureRental] {who}, ")
    # What the notifier sends: at most three segments in the network's own units.
    limit = {"gsm-7": 3 * 153, "ucs-2": 3 * 67}[sms.sms_encoding(text)]
    sent = sms.truncate_for_sms(text, limit)
    assert sms.sms_length(sent) <= limit
    assert_clean(sent)


def test_markup_in_a_name_reaches_the_text_as_plain_characters() -> None:
    rental = rental_with("<b>Kim</b>\x00", "no <i>stock</i>", "TRK-1", "r1")
    entry = rental.status.history[0]
    text = notifications.text(rental, entry, "<script>x</script>")
    assert text == (
        "[PureRental] <b>Kim</b>, sorry, we could not accept your rental of <script>x</script>: "
        "no <i>stock</i>. (ref r1)"
    )
