"""A large kernel message's content, unpacked without holding the GIL for long.

orjson holds the GIL for a whole call, ~2 ms per MB on the 2-core host: unpacking one 40 MB
display held every other gateway thread, the event loop among them, for ~80 ms, and each of a
cell's 30 images of 8 MiB for ~10 ms (bench/health_under_attack.py; docs/benchmarks.md, "Health
under attack"). The bulk of such content is a few long strings (image data, text). So: the
string literals longer than `PIECE` bytes are found with `bytes.find` (C speed), taken out, the
small rest is parsed by orjson, and each long string is decoded `PIECE` bytes at a time (one
short orjson call each: other threads get the GIL between them), cut only where no UTF-8
character, escape sequence or surrogate pair is split. A stream message's text stays in pieces
(`StreamPieces`: the execution keeps only its head and tail); other strings are joined (one
memory copy). orjson checks the rest and every piece, so content that is not valid JSON fails
as a whole parse does; content this cannot take apart (too many strings, endless runs of
backslashes) returns None and the caller unpacks it whole, as before.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import orjson

PIECE: Final = 256 * 1024
# quotes looked at (Python steps, ~1 µs each, the GIL free between them) before the whole parse
_MAX_QUOTES: Final = 100_000
# how far back a cut, or a run of backslashes, is followed before giving up
_SEARCH: Final = 4096
_HIGH_SURROGATES: Final = frozenset(b"89abAB")


class StreamPieces(tuple[str, ...]):
    """A stream message's text in decoded pieces, in order (made here only: a kernel cannot
    send one, JSON has no tuples)."""


def _escape_at(content: bytes, k: int, floor: int) -> int | None:
    """The length of the escape sequence starting at backslash `k` (2, or 6 for `\\uXXXX`), 0
    when that backslash is itself escaped; None when the run of backslashes ending at `k` is
    longer than `_SEARCH`."""
    run = 0
    while k - run >= floor and content[k - run] == 0x5C:
        run += 1
        if run > _SEARCH:
            return None
    if run % 2 == 0:
        return 0
    return 6 if content[k + 1 : k + 2] == b"u" else 2


def _cut(content: bytes, target: int, floor: int) -> int | None:
    """A position at or before `target`, above `floor`, where a string body can be split: not
    inside a UTF-8 character, an escape sequence or a surrogate pair; None if none is near."""
    cut = target
    while cut > floor and target - cut <= _SEARCH:
        if content[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: not a character's start
            cut -= 1
            continue
        low = max(floor, cut - 6)
        slash = content.rfind(b"\\", low, cut)
        if slash < 0:  # an escape is at most 6 bytes: none reaches the cut
            return cut
        length = _escape_at(content, slash, floor)
        if length is None:
            return None
        if slash + length > cut:  # inside the escape: cut before it
            cut = slash
            continue
        if length == 6 and content[slash + 2] in b"dD" and content[slash + 3] in _HIGH_SURROGATES:
            cut = slash  # between the halves of a surrogate pair: before the pair
            continue
        return cut
    return None


def _long_strings(content: bytes) -> list[tuple[int, int]] | None:
    """(start, end) of the body of every string literal longer than `PIECE` bytes, in order;
    None when there are too many quotes to look at."""
    found: list[tuple[int, int]] = []
    seen = 0
    at = content.find(b'"')
    while at >= 0:
        end = at + 1
        while True:  # the closing quote: the next one not escaped
            end = content.find(b'"', end)
            seen += 1
            if end < 0 or seen > _MAX_QUOTES:
                return None
            length = _escape_at(content, end - 1, at + 1) if content[end - 1] == 0x5C else 0
            if length is None:
                return None
            if length != 2:  # not the `\"` escape: it closes the string
                break
            end += 1
        if end - at - 1 > PIECE:
            found.append((at + 1, end))
        at = content.find(b'"', end + 1)
    return found


def _pieces(content: bytes, start: int, end: int) -> list[str] | None:
    pieces: list[str] = []
    while start < end:
        stop = end
        if end - start > PIECE:
            cut = _cut(content, start + PIECE, start)
            if cut is None:
                return None
            stop = cut
        text = orjson.loads(b'"' + content[start:stop] + b'"')
        assert isinstance(text, str)  # a quoted, checked string body
        pieces.append(text)
        start = stop
    return pieces


def _put_back(value: Any, texts: dict[str, str | StreamPieces]) -> Any:
    if isinstance(value, str):
        return texts.get(value, value)
    if isinstance(value, dict):
        return {texts.get(k, k): _put_back(v, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_put_back(v, texts) for v in value]
    return value


def unpack_in_pieces(content: bytes, *, stream: bool = False) -> Any | None:
    """`content` unpacked as orjson would, its long strings decoded a piece at a time (with
    `stream`, a stream message's `text` is left in `StreamPieces`); None when it has no long
    string or cannot be taken apart (then unpack it whole). Raises orjson.JSONDecodeError for
    content that is not valid JSON."""
    spans = _long_strings(content)
    if not spans or (stream and len(spans) > 1):
        return None
    marker = secrets.token_hex(16)  # a kernel cannot guess it: no string of its collides
    rest: list[bytes] = []
    texts: dict[str, str | StreamPieces] = {}
    at = 0
    for n, (start, end) in enumerate(spans):
        pieces = _pieces(content, start, end)
        if pieces is None:
            return None
        key = f"{marker}:{n}"
        rest += (content[at:start], key.encode())
        texts[key] = StreamPieces(pieces) if stream else "".join(pieces)
        at = end
    rest.append(content[at:])
    parsed = orjson.loads(b"".join(rest))
    if stream:
        text = parsed.get("text") if isinstance(parsed, dict) else None
        if not isinstance(text, str) or text not in texts:
            return None  # its long string is not the text: the whole parse decides
        return {**parsed, "text": texts[text]}
    try:
        return _put_back(parsed, texts)
    except RecursionError:  # nested deeper than Python recurses (orjson allows 1,024 levels)
        return None


__all__ = ["PIECE", "StreamPieces", "unpack_in_pieces"]
