"""From what the kernel said (RawExecution) to the execute response's values."""

from __future__ import annotations

from typing import Any, Final

from gateway.kernels.client import RawExecution
from gateway.kernels.types import ExecutionResult

_DESCRIBE: Final = "__import__('gateway_kernel').describe({name})"


def describe_expressions(names: list[str]) -> dict[str, str]:
    """user_expressions asking the kernel helper to describe each variable."""
    return {name: _DESCRIBE.format(name=name) for name in names}


def build_result(run: RawExecution, names: list[str]) -> ExecutionResult:
    """The execution's result from what the kernel said (`run`), with the variables `names`
    described by the kernel helper; called by CellRunner once the execution ended."""
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
    return ExecutionResult(
        status=run.status,
        stdout=run.stdout.text(),
        stderr=run.stderr.text(),
        result=run.result,
        media=run.media,
        execution_count=run.execution_count,
        error_name=run.error_name,
        error_value=run.error_value,
        traceback=run.traceback,
        variables=variables,
        truncated=run.stdout.truncated or run.stderr.truncated,
        media_dropped=run.media_dropped,
        messages_dropped=run.messages_dropped,
    )
