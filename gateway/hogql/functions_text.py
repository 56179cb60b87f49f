"""More strings, URLs and IPv4 addresses, and PostHog's Postgres-compatible string aliases
(`lpad`, `rpad`, `split_part`, `btrim`/`ltrim`/`rtrim`, `initcap`). Regular expressions are
RE2 in both engines."""

from __future__ import annotations

import re
from typing import Final

from gateway.hogql import ast
from gateway.hogql.entry import Function, constant, error, f
from gateway.hogql.handlers import SIZE_CAP, SqlPrinter

_PAD: Final = "CAST(" + SIZE_CAP.format("{1}") + " AS INTEGER)"
# URL parts (scheme-relative and schemeless URLs as ClickHouse takes them)
_AUTHORITY: Final = r"'^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//([^/?#]*)'"
_HOST: Final = r"'^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//(?:[^/?#@]*@)?([^/?#:]*)'"
_AFTER_HOST: Final = r"'^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^/?#]*(.*)$'"
_OCTET: Final = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# {{3}}: the templates go through str.format
_IPV4: Final = "'^(" + _OCTET + r"\.){{3}}" + _OCTET + "$'"
_IPV6: Final = r"'^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$'"
_V4_NUM: Final = (
    "CASE WHEN regexp_matches({0}, " + _IPV4 + ") THEN"
    " list_reduce(list_transform(string_split({0}, '.'), lambda __o: CAST(__o AS BIGINT)),"
    " lambda __a, __b: __a * 256 + __b) END"
)
_V4_TEXT: Final = (
    "CASE WHEN {0} BETWEEN 0 AND 4294967295 THEN concat_ws('.', ({0} >> 24) & 255,"
    " ({0} >> 16) & 255, ({0} >> 8) & 255, {0} & 255) END"
)
_V4_CANONICAL: Final = _V4_TEXT.replace("{0}", "(" + _V4_NUM + ")")


def _check_regex_group(_name: str, node: ast.Call) -> None:
    if len(node.args) == 3:
        index = constant(node.args[2])
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 99:
            msg = "regexpExtract's group index is an integer constant from 0 to 99."
            raise error(msg, node.args[2])


def _extract_all(p: SqlPrinter, node: ast.Call) -> str:
    """extractAll(s, re): every match, or its first group when the pattern has one."""
    pattern = constant(node.args[1])
    group = 0
    if isinstance(pattern, str):
        try:
            group = 1 if re.compile(pattern).groups else 0
        except re.error:
            group = 0
    return f"regexp_extract_all({p.expr(node.args[0])}, {p.expr(node.args[1])}, {group})"


def _concat_with_separator(p: SqlPrinter, node: ast.Call) -> str:
    """concatWithSeparator(sep, a, …): NULL when any argument is (DuckDB's concat_ws skips)."""
    args = [p.expr(a) for a in node.args]
    present = " AND ".join(f"({a}) IS NOT NULL" for a in args)
    return f"CASE WHEN {present} THEN concat_ws({', '.join(args)}) END"


def _regexp_extract(p: SqlPrinter, node: ast.Call) -> str:
    """regexpExtract(s, re[, group]): group 1 by default, the whole match when the pattern has
    no group (ClickHouse)."""
    group = p.expr(node.args[2]) if len(node.args) == 3 else "1"
    pattern = constant(node.args[1])
    if len(node.args) == 2 and isinstance(pattern, str):
        try:
            group = "1" if re.compile(pattern).groups else "0"
        except re.error:
            group = "1"
    return f"regexp_extract({p.expr(node.args[0])}, {p.expr(node.args[1])}, {group})"


def _position(p: SqlPrinter, node: ast.Call) -> str:
    """position(haystack, needle[, start]) (1-based characters; 0 when absent)."""
    name = p.name_of(node)
    haystack, needle = p.expr(node.args[0]), p.expr(node.args[1])
    if "CaseInsensitive" in name:
        haystack, needle = f"lower({haystack})", f"lower({needle})"
    if len(node.args) == 2:
        return f"strpos({haystack}, {needle})"
    start = p.expr(node.args[2])
    found = f"strpos(substring({haystack}, {start}), {needle})"
    return f"CASE WHEN {found} = 0 THEN 0 ELSE {found} + {start} - 1 END"


def _split_part(p: SqlPrinter, node: ast.Call) -> str:
    """split_part(s, delimiter, n) as PostHog: the n-th piece, '' when there is none."""
    pieces = f"string_split({p.expr(node.args[0])}, {p.expr(node.args[1])})"
    n = p.expr(node.args[2])
    return f"coalesce(CASE WHEN {n} <> 0 AND len({pieces}) >= {n} THEN ({pieces})[{n}] END, '')"


def _query_parts(name: str) -> str:
    tail = f"regexp_extract({{0}}, {_AFTER_HOST}, 1)"
    return {
        "queryString": f"regexp_extract({tail}, '^[^?#]*\\?([^#]*)', 1)",
        "fragment": f"regexp_extract({tail}, '^[^#]*#(.*)$', 1)",
        "queryStringAndFragment": (
            f"regexp_extract({tail}, '^[^?#]*\\?(.*)$', 1) ||"
            f" CASE WHEN regexp_matches({tail}, '^[^?#]*#') THEN"
            f" regexp_extract({tail}, '^[^#]*(#.*)$', 1) ELSE '' END"
        ),
        "pathFull": tail,
    }[name]


_PARAMS: Final = (
    "list_filter(string_split(regexp_extract({0}, '^[^?#]*\\?([^#]*)', 1), '&'),"
    " lambda __p: __p <> '')"
)

FUNCTIONS: Final[dict[str, Function]] = {
    # PostHog's own: a version's leading dotted digits as integers, for ordering
    # ('1.2.3.4.15bac.16' is [1, 2, 3, 4, 15]; no version is [0]); sparkline(arr) is the
    # HogQLX tuple its UI draws
    "sortableSemVer": f(
        1,
        1,
        "list_transform(string_split(regexp_extract({0}, '(\\d+(\\.\\d+)+)', 1), '.'),"
        " lambda __v: coalesce(TRY_CAST(__v AS BIGINT), 0))",
        kind="array",
    ),
    "sparkline": f(1, 1, "row('__hx_tag', 'Sparkline', 'data', {0})"),
    # pads and trims (PostHog: a second argument lists the characters to trim)
    "leftPad": f(2, 3, "lpad({0}, " + _PAD + ", coalesce({2}, ' '))"),
    "rightPad": f(2, 3, "rpad({0}, " + _PAD + ", coalesce({2}, ' '))"),
    "leftPadUTF8": f(2, 3, "lpad({0}, " + _PAD + ", coalesce({2}, ' '))"),
    "rightPadUTF8": f(2, 3, "rpad({0}, " + _PAD + ", coalesce({2}, ' '))"),
    "lpad": f(3, 3, "lpad({0}, " + _PAD + ", {2})"),
    "rpad": f(3, 3, "rpad({0}, " + _PAD + ", {2})"),
    "trim": f(1, 2, "trim({0}, coalesce({1}, ' '))"),
    "btrim": f(1, 2, "trim({0}, coalesce({1}, ' '))"),
    "trimLeft": f(1, 2, "ltrim({0}, coalesce({1}, ' '))"),
    "ltrim": f(1, 2, "ltrim({0}, coalesce({1}, ' '))"),
    "trimRight": f(1, 2, "rtrim({0}, coalesce({1}, ' '))"),
    "rtrim": f(1, 2, "rtrim({0}, coalesce({1}, ' '))"),
    # pieces of strings
    "left": f(2, 2, "left({0}, CAST({1} AS BIGINT))"),
    "right": f(2, 2, "right({0}, CAST({1} AS BIGINT))"),
    "substringUTF8": f(
        3, 3, "CASE WHEN {1} = 0 THEN left({0}, 0) ELSE substring({0}, {1}, {2}) END"
    ),
    "reverseUTF8": f(1, 1, "reverse({0})"),
    "split_part": f(3, 3, handler=_split_part),
    "initcap": f(
        1,
        1,
        "array_to_string(list_transform(regexp_extract_all({0}, '[^a-zA-Z0-9]+|[a-zA-Z0-9]+'),"
        " lambda __w: upper(__w[1]) || lower(__w[2:])), '')",
    ),
    "appendTrailingCharIfAbsent": f(
        2, 2, "CASE WHEN {0} = '' OR ends_with({0}, {1}) THEN {0} ELSE {0} || {1} END"
    ),
    # NULL when any argument is (DuckDB's concat_ws skips NULL)
    "concatWithSeparator": f(2, 64, handler=_concat_with_separator),
    # whole bytes, upper case (ClickHouse: hex(256) is '0100')
    "hex": f(1, 1, "CASE WHEN len(hex({0})) % 2 = 1 THEN '0' || hex({0}) ELSE hex({0}) END"),
    # NULL for text that is not hex or bytes that are not UTF-8 (ClickHouse returns raw bytes)
    "unhex": f(1, 1, "try(decode(unhex({0})))"),
    "toJSONString": f(1, 1, "CAST(to_json({0}) AS VARCHAR)"),
    "format": f(2, 64, "format({args})"),
    "ascii": f(1, 1, "CASE WHEN {0} = '' THEN 0 ELSE ascii({0}) END"),
    "isValidUTF8": f(1, 1, "CASE WHEN {0} IS NOT NULL THEN TRUE END"),
    "toValidUTF8": f(1, 1, "{0}"),
    "translate": f(3, 3, "translate({0}, {1}, {2})"),
    "translateUTF8": f(3, 3, "translate({0}, {1}, {2})"),
    "base64Encode": f(1, 1, "to_base64(encode({0}))"),
    "base64Decode": f(1, 1, "decode(from_base64({0}))"),
    "tryBase64Decode": f(1, 1, "coalesce(TRY(decode(from_base64({0}))), '')"),
    "encodeXMLComponent": f(
        1,
        1,
        "replace(replace(replace(replace(replace({0}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),"
        " '\"', '&quot;'), '''', '&apos;')",
    ),
    "decodeXMLComponent": f(
        1,
        1,
        "replace(replace(replace(replace(replace({0}, '&lt;', '<'), '&gt;', '>'),"
        " '&quot;', '\"'), '&apos;', ''''), '&amp;', '&')",
    ),
    # searching
    "position": f(2, 3, handler=_position),
    "positionUTF8": f(2, 3, handler=_position),
    "positionCaseInsensitive": f(2, 3, handler=_position),
    "positionCaseInsensitiveUTF8": f(2, 3, handler=_position),
    "countSubstrings": f(
        2, 2, "CASE WHEN {1} = '' THEN 0 ELSE len(string_split({0}, {1})) - 1 END"
    ),
    "countSubstringsCaseInsensitive": f(
        2, 2, "CASE WHEN {1} = '' THEN 0 ELSE len(string_split(lower({0}), lower({1}))) - 1 END"
    ),
    "countSubstringsCaseInsensitiveUTF8": f(
        2, 2, "CASE WHEN {1} = '' THEN 0 ELSE len(string_split(lower({0}), lower({1}))) - 1 END"
    ),
    "countMatches": f(2, 2, "len(regexp_extract_all({0}, {1}))"),
    "extractAll": f(2, 2, handler=_extract_all, kind="array"),
    "regexpExtract": f(2, 3, handler=_regexp_extract, check=_check_regex_group),
    "regexpQuoteMeta": f(
        1, 1, "regexp_replace({0}, '([\\\\|()^$.\\[\\]?*+{{}}:-])', '\\\\\\1', 'g')"
    ),
    "multiSearchAllPositions": f(
        2,
        2,
        "CASE WHEN {0} IS NOT NULL THEN list_transform({1}, lambda __s: strpos({0}, __s)) END",
        kind="array",
    ),
    "multiSearchAllPositionsUTF8": f(
        2, 2, "list_transform({1}, lambda __s: strpos({0}, __s))", kind="array"
    ),
    "multiSearchAny": f(2, 2, "(len(list_filter({1}, lambda __s: strpos({0}, __s) > 0)) > 0)"),
    "multiSearchFirstPosition": f(
        2,
        2,
        "CASE WHEN {0} IS NOT NULL THEN coalesce(list_min(list_filter(list_transform({1},"
        " lambda __s: strpos({0}, __s)), lambda __i: __i > 0)), 0) END",
    ),
    "multiMatchAny": f(2, 2, "(len(list_filter({1}, lambda __s: regexp_matches({0}, __s))) > 0)"),
    "multiMatchAnyIndex": f(
        2,
        2,
        "coalesce(list_position(list_transform({1}, lambda __s: regexp_matches({0}, __s)),"
        " TRUE), 0)",
    ),
    "multiMatchAllIndices": f(
        2,
        2,
        "list_filter(list_transform(range(1, len({1}) + 1), lambda __i:"
        " CASE WHEN regexp_matches({0}, ({1})[__i]) THEN __i ELSE 0 END), lambda __i: __i > 0)",
        kind="array",
    ),
    # splitting
    "splitByRegexp": f(2, 2, "regexp_split_to_array({1}, {0})", kind="array"),
    "splitByWhitespace": f(
        1,
        1,
        "list_filter(regexp_split_to_array({0}, '\\s+'), lambda __p: __p <> '')",
        kind="array",
    ),
    "splitByNonAlpha": f(
        1,
        1,
        "list_filter(regexp_split_to_array({0}, '[^a-zA-Z0-9]+'), lambda __p: __p <> '')",
        kind="array",
    ),
    "alphaTokens": f(1, 1, "regexp_extract_all({0}, '[a-zA-Z]+')", kind="array"),
    "tokens": f(1, 1, "regexp_extract_all({0}, '[a-zA-Z0-9]+')", kind="array"),
    # URLs
    "netloc": f(1, 1, f"regexp_extract({{0}}, {_AUTHORITY}, 1)"),
    "port": f(
        1,
        2,
        f"coalesce(TRY_CAST(nullif(regexp_extract(regexp_extract({{0}}, {_AUTHORITY}, 1),"
        " ':([0-9]+)$', 1), '') AS INTEGER), {1}, 0)",
    ),
    "topLevelDomain": f(1, 1, f"regexp_extract(regexp_extract({{0}}, {_HOST}, 1), '([^.]*)$', 1)"),
    **{name: f(1, 1, _query_parts(name)) for name in ("queryString", "fragment", "pathFull")},
    "queryStringAndFragment": f(1, 1, _query_parts("queryStringAndFragment")),
    # after the scheme and any user info (https://user@www.x → https://user@x)
    "cutWWW": f(
        1, 1, "regexp_replace({0}, '^((?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//(?:[^/?#@]*@)?)www\\.', '\\1')"
    ),
    "cutFragment": f(1, 1, "regexp_replace({0}, '#.*$', '')"),
    "cutQueryStringAndFragment": f(1, 1, "regexp_replace({0}, '[?#].*$', '')"),
    "extractURLParameters": f(1, 1, _PARAMS, kind="array"),
    "extractURLParameterNames": f(
        1, 1, f"list_transform({_PARAMS}, lambda __q: split_part(__q, '=', 1))", kind="array"
    ),
    "encodeURLComponent": f(1, 1, "url_encode({0})"),
    "decodeURLComponent": f(1, 1, "url_decode({0})"),
    "encodeURLFormComponent": f(1, 1, "replace(url_encode({0}), '%20', '+')"),
    "decodeURLFormComponent": f(1, 1, "url_decode(replace({0}, '+', ' '))"),
    # IPv4 addresses (as text; IPv6 has no type here)
    "isIPv4String": f(1, 1, f"regexp_matches({{0}}, {_IPV4})"),
    "isIPv6String": f(
        1, 1, f"(regexp_matches({{0}}, {_IPV6}) AND NOT regexp_matches({{0}}, ':::'))"
    ),
    "IPv4StringToNum": f(1, 1, "coalesce(" + _V4_NUM + ", 0)"),
    "IPv4StringToNumOrDefault": f(1, 1, "coalesce(" + _V4_NUM + ", 0)"),
    "IPv4StringToNumOrNull": f(1, 1, _V4_NUM),
    "IPv4NumToString": f(1, 1, _V4_TEXT),
    "toIPv4": f(1, 1, _V4_CANONICAL),
    "toIPv4OrNull": f(1, 1, _V4_CANONICAL),
    "toIPv4OrDefault": f(1, 1, "coalesce(" + _V4_CANONICAL + ", '0.0.0.0')"),
    "toIPv4OrZero": f(1, 1, "coalesce(" + _V4_CANONICAL + ", '0.0.0.0')"),
    "isIPAddressInRange": f(
        2,
        2,
        "coalesce((" + _V4_NUM.replace("{0}", "CAST({0} AS VARCHAR)") + ") >> (32 - TRY_CAST("
        "split_part({1}, '/', 2) AS INTEGER)) = ("
        + _V4_NUM.replace("{0}", "split_part({1}, '/', 1)")
        + ") >> (32 - TRY_CAST(split_part({1}, '/', 2) AS INTEGER)), FALSE)",
    ),
}
