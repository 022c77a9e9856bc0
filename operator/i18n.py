"""Korean and English: the message catalogs, choosing a language, and dates for people.

Customers read their text messages (`reconcilers.notifications`) and MyPage (`mypage.pages`) in
Korean or English (CONTRACT §1 `spec.customer.language`, §4). The words live in gettext catalogs,
`operator/locale/{ko,en}/LC_MESSAGES/messages.po`, not in code: a translator edits a `.po` file, and
`pybabel extract` (see `babel.cfg`) finds every text the code uses. The msgid is the English source
text, as gettext has it, with named `{placeholders}` filled by `str.format` after the lookup; a text
missing from a catalog falls back to its msgid, so English never breaks.

The catalogs are compiled when this module is first asked for them, in memory (`read_po`, then
`write_mo` into a buffer read by `babel.support.Translations`), not committed as `.mo` files: the
`.po` is the only copy, so a compiled file can never be older than its source, the wheel carries text
only, and two small catalogs compile in milliseconds once per process. Fuzzy and empty entries are
left out by the compiler, so a half-done translation shows the English text rather than a guess.

`negotiate` reads an `Accept-Language` header (RFC 9110: quality values, `ko-KR` is Korean, `*`
and anything unknown or malformed give the default). `format_date` and `format_datetime` write
moments as the language's readers expect, by Babel's CLDR patterns: Korean in Korea's time
(`2027년 2월 1일 오후 6:00`), English unchanged from the English-only page and texts
(`2027-02-01`, `2027-02-01 09:00 UTC`). Amounts are `api.money.format_amount(..., locale=...)`.

Pure and in the lowest layer (`.importlinter`): the API types, the reconcilers and MyPage import it;
it imports nothing of the operator's.
"""

from __future__ import annotations

import datetime
import functools
import io
import pathlib
import re
from collections.abc import Mapping
from typing import Final, Literal, get_args

import babel.dates
import babel.support
from babel.messages import catalog as babel_catalog
from babel.messages import mofile, pofile

__all__ = [
    "DEFAULT_LANGUAGE",
    "DOMAIN",
    "LANGUAGES",
    "N_",
    "Language",
    "Messages",
    "catalog",
    "format_date",
    "format_datetime",
    "messages",
    "negotiate",
    "placeholders",
]

Language = Literal["ko", "en"]
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)
# Our customers are Korean (KRW, +82 phones): a browser that states no usable preference gets Korean.
DEFAULT_LANGUAGE: Final[Language] = "ko"
DOMAIN: Final = "messages"

# Korea has kept UTC+9 without daylight saving since 1988: a fixed offset is Asia/Seoul exactly, and
# needs no time-zone database in the image.
_SEOUL: Final = datetime.timezone(datetime.timedelta(hours=9), "KST")
_ZONES: Final[Mapping[Language, datetime.tzinfo]] = {"ko": _SEOUL, "en": datetime.UTC}

# A header longer than any browser sends is not read at all (it cannot be a real preference).
_HEADER_LIMIT: Final = 1024
_RANGE: Final = re.compile(r"(?P<tag>\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)")
_QUALITY: Final = re.compile(r"q=(?P<q>0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)", re.IGNORECASE)
_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BY_PRIMARY: Final[Mapping[str, Language]] = {language: language for language in LANGUAGES}
# The catalogs ship inside the package (pyproject.toml package-data), next to this module.
_LOCALE_DIR: Final = pathlib.Path(__file__).parent / "locale"


def N_(msgid: str) -> str:  # noqa: N802 - gettext's name for "translated later", which pybabel finds
    """Marks `msgid` for extraction without translating it: texts kept in tables, looked up later."""
    return msgid


def negotiate(accept_language: str | None, default: Language = DEFAULT_LANGUAGE) -> Language:
    """The language to answer in for an `Accept-Language` header: `ko-KR,ko;q=0.9,en;q=0.8` -> `ko`.

    The acceptable range with the highest quality wins, the earlier one on a tie; `ko`, `ko-KR` and
    any `ko-*` are Korean, `en-*` English. A range with a malformed quality, a wildcard, or only
    languages we do not have leave `default`; so does a missing, empty or malformed header.
    """
    if not accept_language or len(accept_language) > _HEADER_LIMIT:
        return default
    best: tuple[float, Language] | None = None
    for item in accept_language.split(","):
        parts = [part.strip() for part in item.split(";")]
        match = _RANGE.fullmatch(parts[0])
        if match is None:
            continue
        quality = 1.0
        if len(parts) > 1:
            weight = _QUALITY.fullmatch(parts[1]) if len(parts) == 2 else None
            if weight is None:
                continue
            quality = float(weight["q"])
        language = _BY_PRIMARY.get(match["tag"].split("-")[0].lower())
        if quality <= 0 or language is None:
            continue
        if best is None or quality > best[0]:
            best = (quality, language)
    return best[1] if best is not None else default


def catalog(language: Language) -> babel_catalog.Catalog:
    """The parsed `.po` catalog of `language` (for tests and tools; lookups use `messages`)."""
    source = _LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with source.open("rb") as stream:
        return pofile.read_po(stream, locale=language, domain=DOMAIN)


class Messages:
    """The texts of one language: `gettext(msgid, **values)` is the translation with `values` filled."""

    def __init__(self, language: Language, translations: babel.support.NullTranslations) -> None:
        self.language: Final = language
        self._translations = translations

    def gettext(self, msgid: str, /, **values: object) -> str:
        """`msgid` in this language, its `{names}` replaced by `values` (inserted as they are)."""
        text = self._translations.gettext(msgid)
        return text.format_map(values) if values else text

    def __repr__(self) -> str:
        return f"<Messages {self.language}>"


@functools.cache
def messages(language: Language) -> Messages:
    """The compiled catalog of `language`, built once per process (see the module's docstring)."""
    if language not in LANGUAGES:
        raise ValueError(f"no catalog for language {language!r}")
    buffer = io.BytesIO()
    mofile.write_mo(buffer, catalog(language))
    buffer.seek(0)
    return Messages(language, babel.support.Translations(buffer, domain=DOMAIN))


def placeholders(text: str) -> set[str]:
    """The `{names}` in `text`: a translation must use exactly its msgid's."""
    return set(_PLACEHOLDER.findall(text))


def format_date(moment: datetime.datetime, language: Language) -> str:
    """The day of `moment` (aware) where the reader lives: `2027년 2월 1일`; `2027-02-01` in English."""
    local = moment.astimezone(_ZONES[language])
    if language == "ko":
        return babel.dates.format_date(local.date(), "long", locale="ko")
    return babel.dates.format_date(local.date(), "yyyy-MM-dd", locale="en")


def format_datetime(moment: datetime.datetime, language: Language) -> str:
    """`moment` (aware) to the minute: `2027년 2월 1일 오후 6:00` (Korea's time); `2027-02-01 09:00 UTC`."""
    local = moment.astimezone(_ZONES[language])
    if language == "ko":
        day = babel.dates.format_date(local.date(), "long", locale="ko")
        return f"{day} {babel.dates.format_time(local.time(), 'short', locale='ko')}"
    return babel.dates.format_datetime(local, "yyyy-MM-dd HH:mm 'UTC'", tzinfo=datetime.UTC, locale="en")
