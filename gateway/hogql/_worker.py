"""The translator's worker process: `python -m gateway.hogql._worker`, started by Translator.

It reads requests from stdin and writes replies to its original stdout, each frame a 4-byte
big-endian length and a pickle; anything else printed goes to stderr. First it sends `("ready",)`
once its imports are done. A request is `(query, project_id, values, timezone, materialized)`;
a reply is

    ("ok", {Translation field: value})           plain builtins only: the gateway unpickles
    ("error", code, message, start, end)          it with no classes allowed
    ("internal", traceback text)                  a bug: the gateway logs it and answers 500

It exits when stdin closes (the gateway stopped or closed the pool). The gateway kills it when a
translation passes its time budget; nothing here needs to be interruptible.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import traceback
from dataclasses import fields
from typing import IO, Any, Final

from gateway.hogql import translate
from gateway.hogql.errors import HogQLError, HogQLTooComplex

_HEADER: Final = struct.Struct(">I")
_TOO_COMPLEX: Final = HogQLTooComplex.code


def _send(out: IO[bytes], reply: tuple[Any, ...]) -> None:
    data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)) + data)
    out.flush()


def _answer(request: tuple[Any, ...]) -> tuple[Any, ...]:
    query, project_id, values, timezone, materialized = request
    try:
        result = translate(
            query,
            project_id=project_id,
            values=values,
            timezone=timezone,
            materialized=materialized,
        )
    except HogQLError as err:
        return ("error", err.code, err.detail, err.start, err.end)
    except RecursionError:
        return ("error", _TOO_COMPLEX, "The query is nested too deeply to translate.", None, None)
    except MemoryError:
        return ("error", _TOO_COMPLEX, "The query needs too much memory to translate.", None, None)
    except Exception:
        return ("internal", traceback.format_exc())
    return ("ok", {f.name: getattr(result, f.name) for f in fields(result)})


_NICENESS = 10


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the gateway, which stops us
    # Translation is the gateway's least urgent work: a flood of slow queries must not take
    # the CPU from the event loop that answers everyone else.
    os.nice(_NICENESS)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints must not corrupt the frames
    source = sys.stdin.buffer
    _send(out, ("ready",))
    while True:
        header = source.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        (size,) = _HEADER.unpack(header)
        payload = source.read(size)
        if len(payload) < size:
            return
        _send(out, _answer(pickle.loads(payload)))  # noqa: S301 - from the gateway itself


if __name__ == "__main__":
    main()
