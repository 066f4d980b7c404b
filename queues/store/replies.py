"""Redis replies as the text the coordinator works with.

redis-py types every sync reply as ``bytes | str``: ``str`` only under
``decode_responses``, which the coordinator's clients never set, so what arrives
is bytes. A sorted-set range is typed as bare members or (member, score) pairs,
whichever was asked for. These helpers say which once, instead of a cast at
each caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from redis.typing import ZSetRangeResponse


def text(raw: bytes | str) -> str:
    """One reply value (a key, member or field) as text."""
    return raw.decode() if isinstance(raw, bytes) else raw


def text_hash(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """An ``HGETALL`` reply as text."""
    return {text(field): text(value) for field, value in raw.items()}


def members(reply: ZSetRangeResponse) -> list[str]:
    """A sorted-set range read without ``withscores``: its members, in order."""
    return [text(cast("bytes | str", member)) for member in reply]


def scored(reply: ZSetRangeResponse) -> list[tuple[str, float]]:
    """A sorted-set range read ``withscores=True``: (member, score) pairs, in order."""
    pairs = cast("list[tuple[bytes | str, float]]", reply)
    return [(text(member), score) for member, score in pairs]
