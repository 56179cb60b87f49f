"""The variables an execution reports: what the kernel helper said of each name."""

from __future__ import annotations

from typing import Any, Final

from gateway.kernels.types import ExecutionResult

_DESCRIBE: Final = "__import__('gateway_kernel').describe({name})"


def describe_expressions(names: list[str]) -> dict[str, str]:
    """user_expressions asking the kernel helper to describe each variable."""
    return {name: _DESCRIBE.format(name=name) for name in names}


def describe_variables(run: ExecutionResult, names: list[str]) -> None:
    """Fill `run.variables` for `names` from the helper's user_expressions (a description, or
    the error evaluating it); called by CellRunner once the execution ended."""
    variables: dict[str, Any] = {}
    for name in names:
        value = run.user_expressions.get(name)
        if not isinstance(value, dict):
            continue
        if value.get("status") == "ok":
            data = (value.get("data") or {}).get("application/json")
            variables[name] = data if isinstance(data, dict) else {"status": "ok"}
        else:
            variables[name] = {
                "status": "error",
                "ename": value.get("ename"),
                "evalue": value.get("evalue"),
                "traceback": value.get("traceback", []),
            }
    run.variables = variables
