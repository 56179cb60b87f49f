"""Raw-text limits on a HogQL query, checked before any parsing.

The parser's cost grows faster than linearly with some shapes of text (long operator chains,
deep nesting), so a query is measured first with one cheap linear scan: its length, an
approximate token count and its bracket depth. The scan is deliberately rough (a string literal
is one token, `1.5` is three); it bounds the work, it does not validate anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from gateway.hogql.errors import HogQLTooComplex

# One token per match. Every alternative either matches or falls through to a single character,
# and the quoted forms accept an unterminated literal (up to the end of the text), so the scan is
# linear in the text: no backtracking on hostile input.
_TOKEN: Final = re.compile(
    r"""
      '[^'\\]*(?:\\.?[^'\\]*)*'?   # string literal ('' inside: two, fine)
    | "[^"\\]*(?:\\.?[^"\\]*)*"?   # quoted identifier
    | `[^`\\]*(?:\\.?[^`\\]*)*`?   # quoted identifier
    | --[^\n]*                    # line comment
    | /\*.*?(?:\*/|\Z)            # block comment
    | [\w$]+                      # keyword, identifier, number
    | \S                          # any other character: an operator or a bracket
    """,
    re.VERBOSE | re.DOTALL,
)
_OPEN: Final = frozenset("([{")
_CLOSE: Final = frozenset(")]}")


@dataclass(frozen=True, kw_only=True)
class TextLimits:
    """The raw-text limits (from Settings: `hogql_max_query_chars`, `hogql_max_tokens`,
    `hogql_max_depth`)."""

    max_chars: int = 100_000
    max_tokens: int = 10_000
    max_depth: int = 64


def check_text(query: str, limits: TextLimits) -> None:
    """Refuse `query` if it is over a limit. Raises HogQLTooComplex naming the limit; the span
    points at where the limit was passed. Cost: one regex scan, stopped at the token limit."""
    if len(query) > limits.max_chars:
        msg = (
            f"The query is {len(query):,} characters long; the limit is {limits.max_chars:,}"
            " (hogql_max_query_chars)."
        )
        raise HogQLTooComplex(msg, start=limits.max_chars, end=len(query))
    tokens = depth = 0
    for match in _TOKEN.finditer(query):
        text = match.group()
        if text.startswith(("--", "/*")):
            continue
        tokens += 1
        if tokens > limits.max_tokens:
            msg = (
                f"The query has more than {limits.max_tokens:,} tokens (hogql_max_tokens);"
                " shorten it, or pass long lists as placeholder values."
            )
            raise HogQLTooComplex(msg, start=match.start(), end=len(query))
        if text in _OPEN:
            depth += 1
            if depth > limits.max_depth:
                msg = (
                    f"The query nests brackets more than {limits.max_depth} deep (hogql_max_depth)."
                )
                raise HogQLTooComplex(msg, start=match.start(), end=match.end())
        elif text in _CLOSE and depth > 0:
            depth -= 1
