"""Error fingerprints: one key for failures that differ only in the data they name.

``ValueError: photo 1234 not found in 'bucket-7'`` and ``ValueError: photo 99 not
found in 'x'`` are one failure group: the message is normalised (quoted values,
UUIDs, hex ids and numbers replaced by placeholders, whitespace collapsed, length
capped) and the group key is a digest of that text. Pure functions, no Django:
the data migration that fills existing rows imports this module too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# The normalised text fits DeadLetter.fingerprint_text; the key, DeadLetter.fingerprint.
TEXT_LENGTH = 255
KEY_LENGTH = 32
# Only this much of a message is read: a multi-megabyte message costs no more than this.
READ_LENGTH = 4096
ELLIPSIS = "…"

# Straight quotes (with backslash escapes) and typographic ones. An opening quote must
# not follow a letter, so the apostrophe of "can't" opens nothing.
_QUOTES = (r"'(?:[^'\\]|\\.)*'", r'"(?:[^"\\]|\\.)*"',
           r"\u2018[^\u2018\u2019]*\u2019", r"\u201c[^\u201c\u201d]*\u201d")
_QUOTED = re.compile(rf"(?<!\w)(?:{'|'.join(_QUOTES)})(?!\w)", re.S)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
# 0x-prefixed, or 8+ hex digits mixing letters and digits (a digest, an object id).
_HEX = re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Fingerprint:
    """A failure group: ``key`` to group and index by, ``text`` to show."""

    key: str
    text: str


def normalise(error_type: str, message: str) -> str:
    """``error_type: message`` with its data replaced by ``<str>``, ``<uuid>``, ``<hex>``
    and ``<n>``, on one line, at most ``TEXT_LENGTH`` characters (cut with "…").

    A message that already starts with ``error_type: `` is not prefixed twice; an
    empty message, or one that is the type's name (``str(exc)`` was empty), gives the
    type alone, and both empty give "".
    """
    error_type = _SPACE.sub(" ", error_type).strip()
    message = message[:READ_LENGTH]
    if error_type and message.startswith(f"{error_type}: "):
        message = message[len(error_type) + 2:]
    elif message.strip() == error_type:
        message = ""
    for pattern, placeholder in ((_QUOTED, "<str>"), (_UUID, "<uuid>"), (_HEX, "<hex>"),
                                 (_NUMBER, "<n>")):
        message = pattern.sub(placeholder, message)
    message = _SPACE.sub(" ", message).strip()
    text = ": ".join(part for part in (error_type, message) if part)
    if len(text) > TEXT_LENGTH:
        text = text[:TEXT_LENGTH - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return text


def key(text: str) -> str:
    """The group key of a normalised text: ``KEY_LENGTH`` hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:KEY_LENGTH]


def fingerprint(error_type: str, message: str) -> Fingerprint:
    """The failure group of one error (its key and its normalised text)."""
    text = normalise(error_type, message)
    return Fingerprint(key=key(text), text=text)
