"""A large kernel message's content is unpacked with its long strings decoded a piece at a time
(unpack.py), to exactly what a whole parse gives; what it cannot take apart falls back to the
whole parse; and a real kernel's large output keeps the same head and tail as before."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random

import orjson
import pytest

from gateway.kernels import unpack
from gateway.kernels.types import CappedText
from gateway.kernels.unpack import PIECE, StreamPieces, unpack_in_pieces
from tests.conftest import create_notebook

TEXTS = {
    "ascii with lines": ("line of output\n" * 70_000),
    "quotes and backslashes": ('say "hi" \\ c:\\path\\x ' * 40_000),
    "non-ascii and emoji": ("héllo wörld ✓ 😀 日本語\n" * 30_000),
    "control characters": ("\t\x01\x1f\r\n" + "x" * 100) * 8_000,
    "one long line": "y" * (3 * PIECE + 17),
    "only newlines": "\n" * (3 * PIECE),
    "escaped backslashes": ("\\" * 1000 + "z") * 300,
}


def _encodings(obj: object) -> list[bytes]:
    """The ways kernels write JSON: jupyter_client's json (ASCII escapes or raw UTF-8), orjson."""
    return [
        json.dumps(obj).encode(),
        json.dumps(obj, ensure_ascii=False).encode(),
        orjson.dumps(obj),
    ]


@pytest.mark.parametrize("label", sorted(TEXTS))
def test_a_stream_text_comes_in_pieces_that_join_to_it(label):
    text = TEXTS[label]
    for content in _encodings({"name": "stderr", "text": text}):
        found = unpack_in_pieces(content, stream=True)
        assert found is not None, label
        assert found["name"] == "stderr"
        pieces = found["text"]
        assert isinstance(pieces, StreamPieces)
        assert "".join(pieces) == text
        assert len(pieces) > 1
        assert all(len(piece.encode()) <= PIECE for piece in pieces)


def test_a_display_unpacks_to_what_orjson_gives():
    image = base64.b64encode(os.urandom(3 * PIECE)).decode()
    display = {
        "data": {"image/png": image, "text/plain": TEXTS["non-ascii and emoji"], "x": [1, 2.5]},
        "metadata": {"image/png": {"width": 10}, "k" * (PIECE + 1): None},
        "transient": {},
    }
    for content in _encodings(display):
        assert unpack_in_pieces(content) == orjson.loads(content)


def test_what_cannot_be_taken_apart_falls_back_to_the_whole_parse():
    long = "z" * (2 * PIECE)
    assert unpack_in_pieces(orjson.dumps({"a": "short", "b": [1, 2]})) is None  # nothing long
    assert unpack_in_pieces(orjson.dumps({"text": long, "name": long}), stream=True) is None
    assert unpack_in_pieces(orjson.dumps({"name": long, "text": "x"}), stream=True) is None
    assert unpack_in_pieces(orjson.dumps({"name": "stdout", "text": [long]}), stream=True) is None
    # a run of backslashes too long to tell where an escape starts
    assert unpack_in_pieces(orjson.dumps({"name": "stdout", "text": "\\" * (2 * PIECE)})) is None
    many = orjson.dumps({"data": ["a"] * 120_000, "text": long})
    assert unpack_in_pieces(many) is None  # too many strings to look at
    deep = b"[" * 1020 + orjson.dumps(long) + b"]" * 1020  # deeper than Python recurses
    assert unpack_in_pieces(deep) is None
    assert unpack_in_pieces(b"[" * 900 + orjson.dumps(long) + b"]" * 900) == orjson.loads(
        b"[" * 900 + orjson.dumps(long) + b"]" * 900
    )


def test_content_that_is_not_json_fails_as_a_whole_parse_does():
    body = b"a" * (2 * PIECE)
    for bad in (
        b'{"name": "stdout", "text": "' + body + b'", "x": }',  # broken around the long string
        b'{"name": "stdout", "text": "' + body + b"\x00" + body + b'"}',  # raw control char
        b'{"name": "stdout", "text": "' + body + b"\xff\xfe" + b'"}',  # not UTF-8
        b'{"name": "stdout", "text": "' + body,  # never closed
    ):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(bad)
        with contextlib.suppress(orjson.JSONDecodeError):  # or it leaves it to the whole parse
            assert unpack_in_pieces(bad) is None


@pytest.mark.docker
async def test_a_large_stream_message_keeps_the_same_head_and_tail(docker_gateway):
    """The kernel image caps its own stdout (gateway_kernel.py), so a hostile cell sends one
    large stream message itself, as a kernel that bypasses the cap would."""
    client, owner = docker_gateway
    await create_notebook(client, owner, short_id="bigprint")
    text = 'head ✓ "quoted" \\ ' + "é" * 700_000 + "\n" * 3 + "x\t" * 900_000 + " tail 😀 end"
    code = (
        "k = get_ipython().kernel\n"
        "text = 'head ✓ \"quoted\" \\\\ ' + 'é' * 700_000 + '\\n' * 3 + 'x\\t' * 900_000"
        " + ' tail 😀 end'\n"
        "k.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': text},"
        " parent=k.get_parent())\n"
    )
    resp = await client.post(
        owner.url("bigprint/kernel/execute"),
        json={"code": code, "timeout": 120},
        headers=owner.headers,
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    expected = CappedText(1024 * 1024)
    expected.add(text)
    assert body["status"] == "ok"
    assert body["truncated"] is True
    assert body["stdout"] == expected.text()
    # execute/stream sends the message's text as one stdout event per piece, all of it
    resp = await client.post(
        owner.url("bigprint/kernel/execute/stream"),
        json={"code": code, "timeout": 120},
        headers=owner.headers,
    )
    assert resp.status == 200
    events = [e for e in (await resp.text()).split("\n\n") if e.startswith("event: stdout")]
    texts = [json.loads(e.split("data: ", 1)[1])["text"] for e in events]
    assert len(texts) > 1
    assert "".join(texts) == text


def test_every_boundary_with_small_pieces(monkeypatch):
    """Pieces of 16-40 bytes put a cut next to every kind of escape and character."""
    alphabet = ['"', "\\", "\n", "\t", "\x00", "\x1f", "a", "é", "✓", "😀", "\U00010348", " "]
    rng = random.Random(10)  # noqa: S311 - a reproducible test text, not a secret
    for size in range(16, 41):
        monkeypatch.setattr(unpack, "PIECE", size)
        for _ in range(30):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
            obj = {"name": "stdout", "text": text + "x" * size, "more": [text, size]}
            for content in _encodings(obj):
                assert unpack_in_pieces(content) == obj
                found = unpack_in_pieces(
                    orjson.dumps({"name": "stdout", "text": text + "x" * size}), stream=True
                )
                assert found is not None
                assert "".join(found["text"]) == text + "x" * size
