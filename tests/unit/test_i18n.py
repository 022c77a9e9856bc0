"""rental_operator.i18n: choosing the language, the catalogs complete and consistent, dates for people.

The catalog checks read the code the way `pybabel extract` does (with `babel.cfg`), so a text added to
the code and forgotten in a catalog, or a translation that names another placeholder than its msgid,
fails here rather than on a customer's phone.
"""

from __future__ import annotations

import datetime
import pathlib

import pytest
from babel.messages import extract, frontend

from rental_operator import i18n

ROOT = pathlib.Path(__file__).resolve().parents[2]


# --- Accept-Language --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ko-KR,ko;q=0.9,en;q=0.8", "ko"),
        ("ko", "ko"),
        ("ko-KR", "ko"),
        ("KO-kr", "ko"),
        ("en-US", "en"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("en-GB,en;q=0.9,ko;q=0.8", "en"),
        # Quality values decide, not order; an equal quality goes to the first.
        ("en;q=0.5,ko;q=0.8", "ko"),
        ("ko;q=0.5,en", "en"),
        ("en,ko", "en"),
        ("ko,en", "ko"),
        ("fr-FR,fr;q=0.9,en;q=0.3", "en"),
        ("de, en-US;q=0.1", "en"),
        # q=0 is "not acceptable".
        ("en;q=0,fr", "ko"),
        ("en;q=0, ko;q=0", "ko"),
    ],
)
def test_negotiate(header: str, language: str) -> None:
    assert i18n.negotiate(header) == language


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "fr",
        "ja-JP,zh;q=0.5",
        "*",
        "!!!",
        ";;;,,,",
        "en;q=abc",
        "en;q=2",
        "en;q=1.5",
        "en;level=1",
        "en;q=0.5;x=1",
        "en-" + "x" * 20,
        "\u00e9n",
        "en," * 400,  # longer than any browser sends
    ],
)
def test_no_usable_preference_gives_the_default(header: str | None) -> None:
    assert i18n.negotiate(header) == i18n.DEFAULT_LANGUAGE == "ko"
    assert i18n.negotiate(header, default="en") == "en"


def test_one_malformed_range_does_not_spoil_the_others() -> None:
    assert i18n.negotiate("en;q=zz, en-US;q=0.7", default="ko") == "en"


# --- dates ------------------------------------------------------------------------------------------------
MOMENT = datetime.datetime(2027, 2, 1, 9, 0, 3, tzinfo=datetime.UTC)
LATE_EVENING = datetime.datetime(2027, 4, 30, 23, 30, tzinfo=datetime.UTC)


def test_dates_in_korean_are_in_koreas_time() -> None:
    assert i18n.format_date(MOMENT, "ko") == "2027년 2월 1일"
    assert i18n.format_datetime(MOMENT, "ko") == "2027년 2월 1일 오후 6:00"
    # 23:30 UTC is 08:30 the next morning in Seoul: the customer's day.
    assert i18n.format_date(LATE_EVENING, "ko") == "2027년 5월 1일"
    assert i18n.format_datetime(LATE_EVENING, "ko") == "2027년 5월 1일 오전 8:30"


def test_dates_in_english_are_unchanged() -> None:
    assert i18n.format_date(MOMENT, "en") == "2027-02-01"
    assert i18n.format_datetime(MOMENT, "en") == "2027-02-01 09:00 UTC"
    assert i18n.format_date(LATE_EVENING, "en") == "2027-04-30"
    seoul = MOMENT.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
    assert i18n.format_datetime(seoul, "en") == "2027-02-01 09:00 UTC"  # the moment, not its zone


# --- lookups ----------------------------------------------------------------------------------------------
def test_gettext_fills_named_placeholders() -> None:
    msgid = "{paid} of {total} months paid"
    assert i18n.messages("en").gettext(msgid, paid=3, total=36) == "3 of 36 months paid"
    assert i18n.messages("ko").gettext(msgid, paid=3, total=36) == "36개월 중 3개월 납부"


def test_values_are_inserted_as_they_are() -> None:
    # A value holding braces is not a template: it cannot reach other values or attributes.
    text = i18n.messages("ko").gettext("{paid} of {total} months paid", paid="{total.__class__}", total=1)
    assert text == "1개월 중 {total.__class__}개월 납부"


def test_an_unknown_msgid_falls_back_to_itself() -> None:
    assert i18n.messages("ko").gettext("Not in any catalog {x}", x=1) == "Not in any catalog 1"


def test_only_our_languages_have_catalogs() -> None:
    with pytest.raises(ValueError, match="no catalog"):
        i18n.messages("fr")  # type: ignore[arg-type]
    assert i18n.LANGUAGES == ("ko", "en")


def test_the_catalogs_are_compiled_once() -> None:
    assert i18n.messages("ko") is i18n.messages("ko")


def test_n_marks_without_translating() -> None:
    assert i18n.N_("Status") == "Status"


# --- the catalogs: complete, consistent, and what the code uses -------------------------------------------
def _msgids_in_code() -> set[str]:
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = frontend.parse_mapping_cfg(config)
    keywords = {**extract.DEFAULT_KEYWORDS, "N_": None}
    found = extract.extract_from_dir(
        str(ROOT / "operator"), method_map, options_map, keywords=keywords, strip_comment_tags=True
    )
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def test_the_code_uses_texts_and_the_extractor_finds_them() -> None:
    used = _msgids_in_code()
    assert "Monthly fee" in used  # mypage/pages.py
    assert "[PureRental] {name}, {body} (ref {ref})" in used  # reconcilers/notifications.py
    assert len(used) > 80


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_msgid_in_the_code_is_in_the_catalog(language: i18n.Language) -> None:
    catalog = i18n.catalog(language)
    missing = sorted(msgid for msgid in _msgids_in_code() if msgid not in catalog)
    assert not missing, f"add to operator/locale/{language}/LC_MESSAGES/messages.po: {missing}"


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_entry_is_translated_and_names_its_msgids_placeholders(language: i18n.Language) -> None:
    catalog = i18n.catalog(language)
    used = _msgids_in_code()
    for message in catalog:
        if not message.id:
            continue  # the header
        assert isinstance(message.id, str) and isinstance(message.string, str), message.id
        assert message.string, f"{language}: {message.id!r} has no translation"
        assert not message.fuzzy, f"{language}: {message.id!r} is fuzzy"
        assert i18n.placeholders(message.string) == i18n.placeholders(message.id), message.id
        # The text must format: no stray braces outside placeholders.
        message.string.format_map({name: "x" for name in i18n.placeholders(message.id)})
        assert message.id in used, f"{language}: {message.id!r} is not used by the code any more"


def test_english_is_the_source_text() -> None:
    for message in i18n.catalog("en"):
        if message.id:
            assert message.string == message.id


def test_korean_keeps_the_agreed_terms() -> None:
    korean = {message.string for message in i18n.catalog("ko") if message.id}
    text = "\n".join(str(string) for string in korean)
    for term in ("렌탈", "정수기", "월 렌탈료", "위약금", "청약철회", "결제", "배송", "반납", "소유권"):
        assert term in text, term
    # One word per thing: no synonyms that make a customer wonder whether it is something else.
    for avoided in ("대여", "임대", "정수 장치", "페널티", "해약금", "환불금"):
        assert avoided not in text, avoided
    # Polite forms (합니다체) throughout the sentences; no plain (해라체) endings.
    sentences = [s for s in korean if str(s).endswith(".")]
    assert sentences and all(not str(s).endswith(("했다.", "한다.", "이다.")) for s in sentences)


def test_the_catalogs_are_the_sources_shipped_in_the_package() -> None:
    for language in i18n.LANGUAGES:
        path = ROOT / "operator" / "locale" / language / "LC_MESSAGES" / "messages.po"
        assert path.is_file()
        assert not path.with_suffix(".mo").exists()  # compiled in memory, never committed
