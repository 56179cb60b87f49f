"""Settings come from GATEWAY_* variables in one place, with errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import Settings


def test_from_env_casts_each_type():
    settings = Settings.from_env(
        {"GATEWAY_PORT": "9000", "GATEWAY_DATA_DIR": "/tmp/x", "GATEWAY_SHARE_TOKEN_GRACE_S": "1.5"}
    )
    assert settings.port == 9000
    assert settings.data_dir == Path("/tmp/x")
    assert settings.share_token_grace_s == 1.5


def test_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="GATEWAY_PORT"):
        Settings.from_env({"GATEWAY_PORT": "eighty"})


def test_weak_password_hashing_is_refused():
    with pytest.raises(ValueError, match="ITERATIONS"):
        Settings.from_env({"GATEWAY_SHARE_PASSWORD_ITERATIONS": "1000"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_KERNEL_TRANSPORT", "udp"),
        ("GATEWAY_KERNEL_FIREWALL", "none"),
        ("GATEWAY_KERNEL_NETWORK_BRIDGE", "a-bridge-name-too-long"),
        ("GATEWAY_KERNEL_NETWORK_BRIDGE", "br0; rm -rf /"),
        ("GATEWAY_KERNEL_NETWORK", "../../etc/kernels"),
    ],
)
def test_kernel_network_settings_are_checked(variable, value):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_KERNEL_CGROUP_PARENT", "notebook-kernels"),
        ("GATEWAY_KERNEL_CGROUP_PARENT", "/a/../../etc"),
        ("GATEWAY_KERNEL_CGROUP_PARENT", "/a//b"),
        ("GATEWAY_KERNEL_CGROUP_PARENT", "/kernels; rm -rf /"),
        ("GATEWAY_KERNEL_CGROUP_PARENT", "../x.slice"),
        ("GATEWAY_KERNEL_CGROUP_PARENT", "-.slice"),
        ("GATEWAY_KERNEL_CGROUP_CPU_SHARES", "1"),
        ("GATEWAY_KERNEL_CGROUP_CPU_SHARES", "262145"),
    ],
)
def test_kernel_cgroup_settings_are_checked(variable, value):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


@pytest.mark.parametrize("parent", ["", "/notebook-kernels", "/a/b.c_d", "notebook-kernels.slice"])
def test_kernel_cgroup_parents_that_are_accepted(parent):
    assert (
        Settings.from_env({"GATEWAY_KERNEL_CGROUP_PARENT": parent}).kernel_cgroup_parent == parent
    )


def test_tcp_transport_is_accepted():
    assert Settings.from_env({"GATEWAY_KERNEL_TRANSPORT": "tcp"}).kernel_transport == "tcp"


@pytest.mark.parametrize("value", ["0", "-1", "1000"])
def test_switch_interval_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match="GATEWAY_PROCESS_SWITCH_INTERVAL_MS"):
        Settings.from_env({"GATEWAY_PROCESS_SWITCH_INTERVAL_MS": value})


def test_the_relay_has_room_for_the_bridges_results_too():
    """A relay also holds the HogQL results on their way to a kernel that has not read them:
    results larger than kernel messages need a larger relay, or the relay (and the kernel)
    would die of a reply."""
    with pytest.raises(ValueError, match="GATEWAY_HOGQL_MAX_RESULT_BYTES"):
        Settings.from_env({"GATEWAY_HOGQL_MAX_RESULT_BYTES": str(256 << 20)})
    raised = Settings.from_env(
        {"GATEWAY_HOGQL_MAX_RESULT_BYTES": str(256 << 20), "GATEWAY_KERNEL_RELAY_MEMORY_MB": "1600"}
    )
    assert raised.hogql_max_result_bytes == 256 << 20


@pytest.mark.parametrize("value", ["-1", "601", "nan"])
def test_pool_refill_delay_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match="GATEWAY_KERNEL_POOL_REFILL_DELAY_S"):
        Settings.from_env({"GATEWAY_KERNEL_POOL_REFILL_DELAY_S": value})
