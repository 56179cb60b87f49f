# ruff: noqa: RUF024, S311 - read-only signature tables (shared lists are never mutated), long data rows, a seeded test RNG
"""Generated arguments for the ClickHouse oracle: per function, argument signatures over pools
of edge values, each value written twice: as HogQL and as the ClickHouse SQL PostHog prints for
it. A fixed seed and a per-function bound keep the suite small and the same on every run."""

from __future__ import annotations

import itertools
import random
import re
from typing import Final

SEED: Final = 12
PER_FUNCTION: Final = 8

type Value = tuple[str, str]  # (HogQL text, ClickHouse text)


def _same(*texts: str) -> list[Value]:
    return [(t, t) for t in texts]


def _dt(text: str) -> Value:
    return f"toDateTime('{text}')", f"toDateTime64('{text}', 6, 'UTC')"


def _float(text: str) -> Value:
    return f"toFloat('{text}')", f"toFloat64('{text}')"


_JSON = '{"a": 1, "b": [1, 2, {"c": "x"}], "d": null, "e": true, "f": 1.5, "g": "str"}'
POOLS: Final[dict[str, list[Value]]] = {
    "s": _same(
        "''",
        "'\"abc\"'",
        "'Hello World'",
        "'é日本'",
        "' padded  '",
        "NULL",
        "'a,b,,c'",
        "'-12'",
        "'3.5'",
    ),
    "i": _same("0", "1", "3", "-1", "7", "100", "NULL"),
    "p": _same("0", "1", "2", "3", "5"),  # small non-negative integers
    "n": [
        *_same("0", "2.5", "-2.5", "3", "1e10", "NULL", "0.1"),
        ("-0.0", "-0."),
        _float("nan"),
        _float("inf"),
    ],
    "d": [
        _dt("2024-02-29 23:59:59"),
        _dt("1970-01-01 00:00:00"),
        _dt("2024-03-31 01:30:00"),
        _dt("2023-12-31 12:07:05"),
        ("NULL", "NULL"),
    ],
    "D": _same(
        "toDate('2024-02-29')",
        "toDate('1970-01-01')",
        "toDate('2023-01-01')",
        "toDate('2024-12-31')",
    ),
    "a": _same("[]", "[1, 2, 3]", "[3, 1, 2, 2]", "[0, -5]"),
    "A": _same("[]", "['a', 'b']", "['x', '', 'x']"),
    "j": _same(f"'{_JSON}'", "'[1, 2, 3]'", "'not json'", "''", "'{}'", "NULL", "'\"text\"'"),
    "k": _same("'a'", "'b'", "'f'", "'g'", "'zz'", "2"),
    "u": _same(
        "'https://user@www.example.com:8080/p/a?x=1&y=2#frag'",
        "'http://example.org'",
        "'//cdn.example.com/x.js?v=1'",
        "'not a url'",
        "''",
        "'https://a.b.co.uk/path/?q=a%20b&r'",
    ),
    "ip": _same(
        "'192.168.1.10'", "'0.0.0.0'", "'256.1.1.1'", "'1.2.3'", "''", "'::1'", "'10.0.0.255'"
    ),
    "cidr": _same("'192.168.0.0/16'", "'10.0.0.0/8'", "'0.0.0.0/0'"),
    "re": _same("'[a-z]+'", "'(\\\\d+)'", "'^H'", "'l+'"),
    "unit": _same("'\"day\"'", "'\"month\"'", "'hour'", "'week'", "'\"year\"'"),
    "iv": [
        ("INTERVAL 15 minute", "INTERVAL 15 minute"),
        ("INTERVAL 1 day", "INTERVAL 1 day"),
        ("INTERVAL 1 month", "INTERVAL 1 month"),
        ("INTERVAL 2 hour", "INTERVAL 2 hour"),
        ("INTERVAL 1 week", "INTERVAL 1 week"),
        ("INTERVAL 1 year", "INTERVAL 1 year"),
    ],
    "fmt": _same("'%Y-%m-%d'", "'%H:%i:%S'", "'%d/%m/%y %M'"),
}


def _sig(text: str) -> list[str]:
    """Pool names and raw constants ('…', with "…" for a string's quotes), comma-separated."""
    return re.findall(r"'[^']*'|[^,]+", text)


# name → argument signatures (pool names; a quoted text is a constant)
SIGNATURES: Final[dict[str, list[str]]] = {
    # arithmetic and math
    **dict.fromkeys(["plus", "minus", "multiply"], ["i,i", "n,n", "i,n"]),
    **dict.fromkeys(["plus", "minus"], ["i,i", "n,n", "i,n", "d,iv", "D,iv"]),
    "divide": ["n,n", "i,i"],
    "intDiv": ["i,i"],
    "intDivOrZero": ["i,i"],
    "modulo": ["i,i"],
    "moduloOrZero": ["i,i"],
    "positiveModulo": ["i,i"],
    "negate": ["i", "n"],
    "abs": ["i", "n"],
    "gcd": ["i,i"],
    "lcm": ["i,i"],
    "max2": ["n,n"],
    "min2": ["n,n"],
    **dict.fromkeys(
        [
            "exp",
            "log",
            "ln",
            "exp2",
            "log2",
            "exp10",
            "log10",
            "sqrt",
            "cbrt",
            "lgamma",
            "tgamma",
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "cosh",
            "acosh",
            "sinh",
            "asinh",
            "atanh",
            "log1p",
            "sign",
            "degrees",
            "radians",
            "isFinite",
            "isInfinite",
            "isNaN",
            "roundToExp2",
            "roundDuration",
            "roundAge",
        ],
        ["n"],
    ),
    "pow": ["n,n"],
    "power": ["n,n"],
    "atan2": ["n,n"],
    "hypot": ["n,n"],
    "intExp2": ["p"],
    "intExp10": ["p"],
    "factorial": ["p"],
    "e": [""],
    "pi": [""],
    "width_bucket": ["n,'0','10','5'"],
    **dict.fromkeys(["floor", "ceil", "trunc", "round", "roundBankers"], ["n", "n,'1'", "n,'-1'"]),
    "roundDown": ["n,'[0, 1, 5, 10]'"],
    "bitAnd": ["i,i"],
    "bitOr": ["i,i"],
    "bitXor": ["i,i"],
    "bitShiftLeft": ["i,p"],
    "bitShiftRight": ["i,p"],
    "bitTest": ["i,p"],
    "bitTestAll": ["i,p,p"],
    "bitTestAny": ["i,p,p"],
    "bitCount": ["i"],
    "bitHammingDistance": ["i,i"],
    "xor": ["i,i", "i,i,i"],
    "formatReadableSize": ["n"],
    "formatReadableDecimalSize": ["n"],
    "formatReadableQuantity": ["n"],
    "L1Norm": ["a"],
    "L2Norm": ["a"],
    "LinfNorm": ["a"],
    "LpNorm": ["a,'3'"],
    "L1Distance": ["a,a"],
    "L2Distance": ["a,a"],
    "LinfDistance": ["a,a"],
    "cosineDistance": ["a,a"],
    "dotProduct": ["a,a"],
    # strings
    **dict.fromkeys(
        [
            "lower",
            "upper",
            "lowerUTF8",
            "upperUTF8",
            "length",
            "lengthUTF8",
            "reverse",
            "reverseUTF8",
            "empty",
            "notEmpty",
            "trim",
            "trimLeft",
            "trimRight",
            "ltrim",
            "rtrim",
            "btrim",
            "initcap",
            "ascii",
            "base64Encode",
            "encodeXMLComponent",
            "decodeXMLComponent",
            "toString",
            "isValidUTF8",
            "splitByWhitespace",
            "splitByNonAlpha",
            "alphaTokens",
            "regexpQuoteMeta",
            "encodeURLComponent",
            "decodeURLComponent",
            "encodeURLFormComponent",
            "decodeURLFormComponent",
            "toIntOrZero",
            "toFloatOrZero",
            "toInt",
            "toFloat",
            "hex",
            "md5",
        ],
        ["s"],
    ),
    "left": ["s,i"],
    "right": ["s,i"],
    "substring": ["s,i,p"],
    "substringUTF8": ["s,i,p"],
    "leftPad": ["s,p,'\"*\"'", "s,p"],
    "rightPad": ["s,p,'\"*\"'"],
    "lpad": ["s,p,'\"xy\"'"],
    "rpad": ["s,p,'\"xy\"'"],
    "repeat": ["s,p"],
    "concat": ["s,s"],
    "concatWithSeparator": ["'\"-\"',s,s"],
    "startsWith": ["s,s"],
    "endsWith": ["s,s"],
    "position": ["s,s", "s,s,p"],
    "positionCaseInsensitive": ["s,s"],
    "positionUTF8": ["s,s"],
    "countSubstrings": ["s,s"],
    "countMatches": ["s,re"],
    "match": ["s,re"],
    "extract": ["s,re"],
    "extractAll": ["s,re"],
    "regexpExtract": ["s,re"],
    "replace": ["s,s,'\"_\"'"],
    "replaceAll": ["s,s,'\"_\"'"],
    "replaceOne": ["s,s,'\"_\"'"],
    "replaceRegexpAll": ["s,re,'\"_\"'"],
    "replaceRegexpOne": ["s,re,'\"_\"'"],
    "translate": ["s,'\"abc\"','\"xyz\"'"],
    "appendTrailingCharIfAbsent": ["s,'\"/\"'"],
    "splitByChar": ["'\",\"',s"],
    "splitByString": ["'\",,\"',s"],
    "splitByRegexp": ["re,s"],
    "split_part": ["s,'\",\"',i"],
    "format": ["'\"{} and {}\"',s,s"],
    "multiSearchAllPositions": ["s,A"],
    "multiSearchAny": ["s,A"],
    "multiSearchFirstPosition": ["s,A"],
    "multiMatchAny": ["s,A"],
    "multiMatchAnyIndex": ["s,A"],
    "multiMatchAllIndices": ["s,A"],
    # URLs and IPs
    **dict.fromkeys(
        [
            "domain",
            "domainWithoutWWW",
            "protocol",
            "path",
            "pathFull",
            "queryString",
            "fragment",
            "queryStringAndFragment",
            "netloc",
            "port",
            "topLevelDomain",
            "cutWWW",
            "cutFragment",
            "cutQueryString",
            "cutQueryStringAndFragment",
            "extractURLParameters",
            "extractURLParameterNames",
        ],
        ["u"],
    ),
    "extractURLParameter": ["u,'\"x\"'", "u,'\"q\"'"],
    **dict.fromkeys(
        [
            "isIPv4String",
            "IPv4StringToNumOrNull",
            "IPv4StringToNumOrDefault",
            "toIPv4OrNull",
            "toIPv4OrDefault",
            "toIPv4OrZero",
        ],
        ["ip"],
    ),
    "IPv4NumToString": ["i", "'3232235786'"],
    "isIPAddressInRange": ["ip,cidr"],
    # JSON
    **dict.fromkeys(
        [
            "JSONExtractString",
            "JSONExtractInt",
            "JSONExtractFloat",
            "JSONExtractBool",
            "JSONExtractRaw",
            "JSONExtractUInt",
            "JSONHas",
            "JSONLength",
            "JSONType",
            "JSONExtractKeys",
            "JSONExtractArrayRaw",
        ],
        ["j", "j,k", "j,'\"b\"','3'"],
    ),
    "isValidJSON": ["j"],
    "JSONArrayLength": ["j"],
    "JSONExtract": [
        "j,k,'\"String\"'",
        "j,k,'\"Int64\"'",
        "j,k,'\"Nullable(Float64)\"'",
        "j,'\"b\"','\"Array(String)\"'",
    ],
    # conversions and conditionals
    "toDate": ["s", "d"],
    "toDateTime": ["s"],
    "toUUID": ["s"],
    "toJSONString": ["s", "a"],
    "toBool": ["i"],
    "toFloatOrDefault": ["s,'7.5'"],
    "coalesce": ["s,s"],
    "ifNull": ["s,s"],
    "nullIf": ["s,s"],
    "isNull": ["s"],
    "isNotNull": ["s"],
    "assumeNotNull": ["i"],
    "toNullable": ["i"],
    "if": ["i,s,s"],
    "multiIf": ["i,s,i,s,s"],
    "least": ["n,n"],
    "greatest": ["n,n"],
    # dates
    **dict.fromkeys(
        [
            "toYear",
            "toQuarter",
            "toMonth",
            "toDayOfYear",
            "toDayOfMonth",
            "toDayOfWeek",
            "toHour",
            "toMinute",
            "toSecond",
            "toUnixTimestamp",
            "toUnixTimestamp64Milli",
            "toStartOfYear",
            "toStartOfISOYear",
            "toStartOfQuarter",
            "toStartOfMonth",
            "toLastDayOfMonth",
            "toMonday",
            "toStartOfWeek",
            "toStartOfDay",
            "toLastDayOfWeek",
            "toStartOfHour",
            "toStartOfMinute",
            "toStartOfSecond",
            "toStartOfFiveMinutes",
            "toStartOfTenMinutes",
            "toStartOfFifteenMinutes",
            "toISOYear",
            "toISOWeek",
            "toWeek",
            "timeSlot",
            "toYYYYMM",
            "toYYYYMMDD",
            "toYYYYMMDDhhmmss",
            "monthName",
            "toModifiedJulianDay",
        ],
        ["d", "D"],
    ),
    "toStartOfInterval": ["d,iv"],
    "dateDiff": ["unit,d,d"],
    "date_diff": ["unit,d,d"],
    "age": ["unit,d,d"],
    "dateTrunc": ["unit,d"],
    "date_trunc": ["unit,d"],
    # ClickHouse's dateAdd(date, interval) and PostHog's two-argument date_add: date + interval
    **dict.fromkeys(["dateAdd", "dateSub"], ["unit,i,d", "d,iv", "D,iv"]),
    **dict.fromkeys(
        ["date_add", "date_subtract", "timeStampAdd", "timeStampSub"], ["d,iv", "D,iv"]
    ),
    **{
        f"add{u}s": ["d,i", "D,i"]
        for u in ("Second", "Minute", "Hour", "Day", "Week", "Month", "Quarter", "Year")
    },
    **{
        f"subtract{u}s": ["d,i"]
        for u in ("Second", "Minute", "Hour", "Day", "Week", "Month", "Quarter", "Year")
    },
    "formatDateTime": ["d,fmt"],
    "to_char": ["d,fmt"],
    "dateName": ["'\"month\"',d", "'\"weekday\"',d", "'\"day\"',d"],
    "date_part": ["'\"year\"',d", "'\"doy\"',d", "'\"dow\"',d"],
    "fromUnixTimestamp": ["i"],
    "fromUnixTimestamp64Milli": ["i"],
    "to_timestamp": ["i"],
    "make_date": ["'2024','2','29'"],
    "make_timestamp": ["'2024','2','29','13','5','7.5'"],
    "fromModifiedJulianDay": ["'60000'"],
    "toTimeZone": ["d,'\"Asia/Tokyo\"'"],
    "timezone": ["'\"America/New_York\"',d"],
    "date_bin": ["iv,d,d"],
    # arrays
    **dict.fromkeys(
        [
            "arraySort",
            "arrayReverseSort",
            "arrayReverse",
            "arrayDistinct",
            "arrayCompact",
            "arraySum",
            "arrayMin",
            "arrayMax",
            "arrayAvg",
            "arrayEnumerate",
            "arrayEnumerateDense",
            "arrayPopBack",
            "arrayPopFront",
            "arrayUniq",
            "arrayDifference",
            "arrayCumSum",
            "arrayProduct",
            "arrayFlatten",
        ],
        ["a"],
    ),
    "has": ["a,i"],
    "hasAll": ["a,a"],
    "hasAny": ["a,a"],
    "hasSubstr": ["a,a"],
    "indexOf": ["a,i"],
    "countEqual": ["a,i"],
    "arrayElement": ["a,i"],
    "arrayPushBack": ["a,i"],
    "arrayPushFront": ["a,i"],
    "arrayResize": ["a,p"],
    "arraySlice": ["a,i,p"],
    "arrayConcat": ["a,a"],
    "arrayIntersect": ["a,a"],
    "arrayZip": ["a,a"],
    "arrayRotateLeft": ["a,i"],
    "arrayRotateRight": ["a,i"],
    "arrayWithConstant": ["p,s"],
    "arrayStringConcat": ["A", "A,'\"-\"'"],
    "range": ["p", "i,p"],
    "arrayReduce": ["'\"sum\"',a", "'\"max\"',a", "'\"uniq\"',a", "'\"avg\"',a", "'\"count\"',a"],
    "arrayMap": ["'x -> x * 2',a"],
    "arrayFilter": ["'x -> x > 1',a"],
    "arrayExists": ["'x -> x > 1',a"],
    "arrayAll": ["'x -> x > 1',a"],
    "arrayCount": ["'x -> x > 1',a"],
    "arrayFirst": ["'x -> x > 1',a"],
    "arrayLast": ["'x -> x > 1',a"],
    "arrayFirstIndex": ["'x -> x > 1',a"],
    "arrayLastIndex": ["'x -> x > 1',a"],
    "arrayFold": ["'(acc, x) -> acc + x',a,'0'"],
    "mapKeys": ["'map(1, 2, 3, 4)'"],
    "mapValues": ["'map(1, 2, 3, 4)'"],
    "mapContains": ["'map(1, 2, 3, 4)',i"],
    "tupleElement": ["'tuple(1, 2)','1'"],
}


def _render(spec: str, rng: random.Random) -> list[Value] | None:
    values: list[list[Value]] = []
    for part in _sig(spec):
        if part.startswith("'") and part.endswith("'") and len(part) > 1:
            literal = part[1:-1].replace('"', "'")
            values.append([(literal, literal)])
        else:
            values.append(POOLS[part])
    return values  # type: ignore[return-value]


def cases(name: str) -> list[tuple[str, ...]]:
    """Up to PER_FUNCTION argument lists for `name`, each a tuple of (HogQL, ClickHouse) texts."""
    rng = random.Random(f"{SEED}:{name}")
    out: list[tuple[str, ...]] = []
    for spec in SIGNATURES.get(name, []):
        pools = _render(spec, rng)
        assert pools is not None
        combos = list(itertools.product(*pools))
        rng.shuffle(combos)
        out.extend(combos[: max(1, PER_FUNCTION // len(SIGNATURES[name]))])  # type: ignore[arg-type, unused-ignore]
    return out
