"""The error fingerprint (deadletter.fingerprint): pure functions, no database."""

from __future__ import annotations

import pytest

from deadletter.fingerprint import (
    KEY_LENGTH,
    READ_LENGTH,
    TEXT_LENGTH,
    fingerprint,
    key,
    normalise,
)


def test_the_seed_example_is_one_group() -> None:
    a = fingerprint("ValueError", "photo 1234 not found in 'bucket-7'")
    b = fingerprint("ValueError", "photo 99 not found in 'x'")
    assert a == b
    assert a.text == "ValueError: photo <n> not found in <str>"
    assert len(a.key) == KEY_LENGTH and set(a.key) <= set("0123456789abcdef")


@pytest.mark.parametrize(("message", "expected"), [
    ('missing key "user-42" in cache', "missing key <str> in cache"),
    ("can't open 'a.txt', it doesn't exist", "can't open <str>, it doesn't exist"),
    (r"bad value 'it\'s 7' here", "bad value <str> here"),
    ("job 123e4567-E89B-12d3-a456-426614174000 lost", "job <uuid> lost"),
    ("object at 0x7f3a2c1d9e80 refused", "object at <hex> refused"),
    ("digest 3f2a9c1d4e5b6a7f mismatch", "digest <hex> mismatch"),
    ("took 12.5 s of 1,000 ms budget", "took <n> s of <n> ms budget"),
    ("retry -3 after 500ms", "retry -<n> after <n>ms"),
    ("a word like deadbeef or decade stays", "a word like deadbeef or decade stays"),
    ("unterminated ' quote 5", "unterminated ' quote <n>"),
    ("typographic \u201cquoted\u201d and \u2018single\u2019", "typographic <str> and <str>"),
])
def test_data_in_a_message_is_replaced_by_placeholders(message: str, expected: str) -> None:
    assert normalise("E", message) == f"E: {expected}"


def test_a_multi_line_message_becomes_one_line() -> None:
    message = "connection refused\n  host: 'db-3'\n\tport: 5432\r\n"
    assert normalise("OperationalError", message) == (
        "OperationalError: connection refused host: <str> port: <n>")
    assert fingerprint("X", "a\nb").key == fingerprint("X", "a   b").key


def test_a_quoted_value_spanning_lines_is_one_value() -> None:
    assert normalise("E", "bad 'first\nsecond' value") == "E: bad <str> value"


def test_unicode_is_kept_and_its_digits_are_numbers() -> None:
    assert normalise("ValueError", "fichier « été » introuvable: 42 octets") == (
        "ValueError: fichier « été » introuvable: <n> octets")
    assert normalise("E", "写真 ١٢٣ が見つかりません") == "E: 写真 <n> が見つかりません"
    assert normalise("E", "emoji 🚀 in 'x'") == "E: emoji 🚀 in <str>"


def test_a_long_message_is_capped_and_groups_by_its_start() -> None:
    long_a = "row failed: " + "x" * 10_000 + " end a"
    long_b = "row failed: " + "x" * 10_000 + " end b"
    a, b = fingerprint("E", long_a), fingerprint("E", long_b)
    assert len(a.text) == TEXT_LENGTH and a.text.endswith("…")
    assert a == b


def test_only_the_start_of_a_huge_message_is_read() -> None:
    huge = "'" + "a" * (READ_LENGTH * 10)  # an unterminated quote over megabytes
    assert len(normalise("E", huge)) == TEXT_LENGTH


def test_empty_parts() -> None:
    assert normalise("KeyError", "") == "KeyError"
    assert normalise("KeyError", "   \n ") == "KeyError"
    assert normalise("", "no type") == "no type"
    assert normalise("", "") == ""
    assert fingerprint("", "").key == key("")


def test_the_type_is_not_repeated() -> None:
    assert normalise("LookupError", "LookupError: boom 3") == "LookupError: boom <n>"
    assert normalise("KeyError", "KeyError") == "KeyError"  # str(exc) was empty
    assert normalise("KeyError", "KeyErrors 3") == "KeyError: KeyErrors <n>"


def test_different_types_or_words_are_different_groups() -> None:
    base = fingerprint("ValueError", "photo 1 not found")
    assert fingerprint("TypeError", "photo 1 not found").key != base.key
    assert fingerprint("ValueError", "video 1 not found").key != base.key


def test_the_key_is_stable() -> None:
    # Stored on every row and in URLs: changing it regroups existing rows.
    assert key("ValueError: photo <n> not found in <str>") == (
        fingerprint("ValueError", "photo 7 not found in 'b'").key)
    assert key("") == "e3b0c44298fc1c149afbf4c8996fb924"
