"""Host firewall rules for the tcp transport's kernel network.

Docker's internal network with inter-container traffic off already stops a kernel reaching the
internet and other kernels, but not the host itself: a packet to the bridge's address (or any
of the host's addresses) arrives through the host's INPUT chain, which Docker leaves open, so a
kernel could reach the gateway, a database or SSH. These rules close that: everything arriving
from the kernel bridge is dropped unless it answers a connection the host opened (the gateway
connecting to a kernel's ports). One chain per bridge, jumped to from INPUT, for IPv4 and IPv6.

Blocking calls (they run `iptables`): callers run them in a thread.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Final

from gateway.kernels.errors import SandboxError

_TOOLS: Final = ("iptables", "ip6tables")
_TIMEOUT_S: Final = 30.0


def chain_name(bridge: str) -> str:
    """The chain holding `bridge`'s rules (iptables chain names are at most 28 characters)."""
    return f"GW-KERNELS-{bridge}"[:28]


def _rules(bridge: str) -> list[list[str]]:
    chain = chain_name(bridge)
    return [
        ["-A", chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ["-A", chain, "-j", "DROP"],
    ]


_WHO = (
    "The tcp transport (the default) needs a gateway running as root to install them; or set"
    " GATEWAY_KERNEL_TRANSPORT=ipc."
)


def _jump(bridge: str) -> list[str]:
    return ["INPUT", "-i", bridge, "-j", chain_name(bridge)]


def _tools() -> list[str]:
    found = [tool for tool in _TOOLS if shutil.which(tool)]
    if "iptables" not in found:
        msg = (
            "The tcp transport needs iptables on the gateway's host (to stop kernels reaching"
            " the host); install it, set GATEWAY_KERNEL_FIREWALL=external (rules put in place"
            " by hand), or set GATEWAY_KERNEL_TRANSPORT=ipc."
        )
        raise SandboxError(msg)
    return found


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed tool, arguments built here
        [tool, "-w", "5", *args],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )


def _present(tool: str, bridge: str) -> bool:
    chain = chain_name(bridge)
    listed = _run(tool, "-S", chain)
    if listed.returncode != 0:
        return False
    expected = [" ".join(rule) for rule in _rules(bridge)]
    actual = [line.strip() for line in listed.stdout.splitlines() if line.startswith("-A ")]
    # iptables prints the conntrack match with its own spelling of the state list
    normalized = [line.replace("RELATED,ESTABLISHED", "ESTABLISHED,RELATED") for line in actual]
    return normalized == expected and _run(tool, "-C", *_jump(bridge)).returncode == 0


def installed(bridge: str) -> bool:
    """Whether every rule for `bridge` is in place (both address families where present)."""
    try:
        return all(_present(tool, bridge) for tool in _tools())
    except (SandboxError, OSError, subprocess.TimeoutExpired):
        return False


def install(bridge: str) -> None:
    """Make the rules for `bridge` exactly as they should be (idempotent). Raises SandboxError."""
    try:
        for tool in _tools():
            if _present(tool, bridge):
                continue
            chain = chain_name(bridge)
            _run(tool, "-N", chain)  # fails harmlessly when it exists
            steps = [["-F", chain], *_rules(bridge)]
            if _run(tool, "-C", *_jump(bridge)).returncode != 0:
                steps.append(["-I", *_jump(bridge)[:1], "1", *_jump(bridge)[1:]])
            for step in steps:
                done = _run(tool, *step)
                if done.returncode != 0:
                    msg = f"{tool} {' '.join(step)} failed: {done.stderr.strip()}. {_WHO}"
                    raise SandboxError(msg)
    except (OSError, subprocess.TimeoutExpired) as err:
        msg = f"Could not install the kernel network's firewall rules ({err}). {_WHO}"
        raise SandboxError(msg) from err


def remove(bridge: str) -> None:
    """Remove the rules for `bridge` (what is already gone is not an error)."""
    for tool in _TOOLS:
        if not shutil.which(tool):
            continue
        while _run(tool, "-D", *_jump(bridge)).returncode == 0:
            pass
        _run(tool, "-F", chain_name(bridge))
        _run(tool, "-X", chain_name(bridge))
