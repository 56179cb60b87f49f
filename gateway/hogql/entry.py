"""One registry entry: the frozen `Function` every HogQL function is described by. The
registry itself (`functions.py`) and the function families (`functions_*.py`) build these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.hogql import ast
from gateway.hogql.errors import HogQLQueryError

if TYPE_CHECKING:
    from gateway.hogql.handlers import SqlPrinter

type Handler = Callable[[SqlPrinter, ast.Call], str]
type Check = Callable[[str, ast.Call], None]


@dataclass(frozen=True, kw_only=True)
class Function:
    """One HogQL function. The resolver reads the arity, argument shapes and `check`; the
    printer reads `template` or `handler` (a handler wins: it is for what a template cannot
    say). Entries are immutable and shared by every query."""

    min_args: int
    max_args: int
    # DuckDB template: {0}, {1}… are the rendered arguments; {args} is all of them, comma-joined;
    # {p0}… and {params} the checked parameters of a parametric aggregate
    template: str = ""
    # printed by this handler instead of the template (it receives the call node)
    handler: Handler | None = None
    # the template when the first argument is an array (length(arr) → len(arr))
    array_template: str | None = None
    # extra checks of the arguments, run by the resolver (it raises HogQLError)
    check: Check | None = None
    aggregate: bool = False
    # what it returns, where the printer must know: "array", "date"; None: anything else
    kind: str | None = None
    # the result has the kind of this argument (coalesce(d, …), addDays(d, n): a Date stays one)
    kind_from: int | None = None
    # the result is shown in its first argument's zone (toStartOfDay(toTimeZone(ts, 'X')))
    keeps_zone: bool = False
    # the first argument is a date unit ('day'), printed as a checked literal
    unit_first: bool = False
    # the first argument is a lambda applied to the arrays that follow (arrayMap)
    lambda_first: bool = False
    # an INTERVAL (toIntervalDay(n)): a Date ± it stays a Date
    interval: bool = False
    # parametric aggregates take quantile(p)(x): (min, max) numeric constant parameters
    params: tuple[int, int] | None = None
    # the -If combinator: the last argument is a condition (sumIf(x, cond))
    condition: bool = False
    # a bare NULL argument makes the call NULL (ClickHouse's rule for Nullable arguments),
    # printed as NULL: DuckDB cannot pick the date overload of an untyped NULL (toYear(NULL))
    null_strict: bool = False


def f(min_args: int, max_args: int, template: str = "", **options: Any) -> Function:
    """A registry entry (keyword options as in `Function`)."""
    return Function(min_args=min_args, max_args=max_args, template=template, **options)


def error(message: str, node: ast.Node) -> HogQLQueryError:
    """A query error spanning `node`."""
    return HogQLQueryError(message, start=node.start, end=node.end)


def check_arity(name: str, function: Function, node: ast.Call | ast.WindowFunction) -> None:
    """PostHog's message for a call with too few or too many arguments."""
    found, low, high = len(node.args), function.min_args, function.max_args
    if low <= found <= high:
        return
    bound = "" if low == high else "at least " if found < low else "at most "
    wanted = low if found < low else high
    plural = "" if wanted == 1 else "s"
    msg = f"Function '{name}' expects {bound}{wanted} argument{plural}, found {found}"
    raise error(msg, node)


def constant(node: ast.Expr) -> Any:
    """The value of a constant argument, None for anything else."""
    return node.value if isinstance(node, ast.Constant) else None
