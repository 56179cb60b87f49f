"""The kernels' parent cgroup (kernels/cgroups.py): what is decided from the engine's `docker
info`, and what is written, on a directory laid out as cgroup v1 and v2 lay out theirs (the
real cgroup v1 write and the kernels in it: test_docker_sandbox.py)."""

from __future__ import annotations

import pytest

from gateway.kernels import cgroups
from gateway.kernels.errors import SandboxError

V1 = {"CgroupDriver": "cgroupfs", "CgroupVersion": "1"}


def test_cgroupfs_on_this_host_is_the_gateways_to_weigh():
    placed = cgroups.placement("/notebook-kernels", 128, V1, local=True)
    assert (placed.parent, placed.shares, placed.problem) == ("/notebook-kernels", 128, None)


def test_a_remote_engine_places_kernels_but_says_who_must_weigh_them():
    placed = cgroups.placement("/notebook-kernels", 128, V1, local=False)
    assert placed.parent == "/notebook-kernels" and placed.shares is None
    assert "GATEWAY_KERNEL_CGROUP_CPU_SHARES=0" in (placed.problem or "")


def test_zero_shares_leave_the_weight_to_the_operator_without_a_problem():
    placed = cgroups.placement("/notebook-kernels", 0, V1, local=False)
    assert (placed.parent, placed.shares, placed.problem) == ("/notebook-kernels", None, None)


def test_an_empty_parent_is_the_engines_default():
    placed = cgroups.placement("", 128, V1, local=True)
    assert (placed.parent, placed.shares, placed.problem) == (None, None, None)


def test_systemd_needs_a_slice_and_owns_its_weight():
    systemd = {"CgroupDriver": "systemd", "CgroupVersion": "2"}
    placed = cgroups.placement("/notebook-kernels", 128, systemd, local=True)
    assert placed.parent is None and "slice" in (placed.problem or "")
    placed = cgroups.placement("notebook-kernels.slice", 128, systemd, local=True)
    assert placed.parent == "notebook-kernels.slice" and placed.shares is None
    assert "CPUWeight" in (placed.problem or "")
    placed = cgroups.placement("notebook-kernels.slice", 0, systemd, local=True)
    assert placed.problem is None


def test_cgroupfs_needs_an_absolute_parent():
    """runc would put a relative parent under its own cgroup: not where the weight is."""
    placed = cgroups.placement("notebook-kernels.slice", 128, V1, local=True)
    assert placed.parent is None and placed.shares is None
    assert "absolute" in (placed.problem or "")


@pytest.mark.parametrize("parent", ["/a.slice", "-.slice", "a/b.slice"])
def test_systemd_refuses_what_is_not_a_plain_slice_name(parent):
    systemd = {"CgroupDriver": "systemd", "CgroupVersion": "2"}
    placed = cgroups.placement(parent, 0, systemd, local=True)
    assert placed.parent is None and "slice" in (placed.problem or "")


def test_v1_writes_the_shares_of_the_parent_in_the_cpu_controller(tmp_path):
    (tmp_path / "cpu").mkdir()
    cgroups.set_weight("/notebook-kernels", 128, "1", root=tmp_path)
    assert (tmp_path / "cpu" / "notebook-kernels" / "cpu.shares").read_text() == "128"
    cgroups.set_weight("/notebook-kernels", 64, "1", root=tmp_path)  # again: overwritten
    assert (tmp_path / "cpu" / "notebook-kernels" / "cpu.shares").read_text() == "64"


def test_v1_with_cpu_and_cpuacct_mounted_together(tmp_path):
    (tmp_path / "cpu,cpuacct").mkdir()
    cgroups.set_weight("/a/b", 256, "1", root=tmp_path)
    assert (tmp_path / "cpu,cpuacct" / "a" / "b" / "cpu.shares").read_text() == "256"


def test_v2_enables_the_cpu_controller_down_to_the_parent_and_writes_its_weight(tmp_path):
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cgroup.subtree_control").write_text("cpu memory\n")
    cgroups.set_weight("/a/kernels", 128, "2", root=tmp_path)
    # a real cgroupfs takes "+cpu" as "add cpu"; a plain file keeps what was written
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu"
    assert (tmp_path / "a" / "cgroup.subtree_control").read_text() == "cpu memory\n"
    assert (tmp_path / "a" / "kernels" / "cpu.weight").read_text() == "12"


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (128, 12), (1024, 100), (262_144, 10_000)])
def test_v2_weight_keeps_the_ratio_to_the_default(shares, weight):
    assert cgroups.v2_weight(shares) == weight


def test_a_write_that_fails_is_a_reason_not_a_crash(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "notebook-kernels").write_text("a file where the cgroup should be")
    with pytest.raises(SandboxError, match="Could not set the CPU weight"):
        cgroups.set_weight("/notebook-kernels", 128, "1", root=tmp_path)


def test_apply_reports_what_it_wrote(tmp_path):
    (tmp_path / "cpu").mkdir()
    parent, report = cgroups.apply("/notebook-kernels", 512, V1, local=True, root=tmp_path)
    assert parent == "/notebook-kernels"
    assert report == {"parent": "/notebook-kernels", "cpu_shares": 512, "problem": None}
    assert (tmp_path / "cpu" / "notebook-kernels" / "cpu.shares").read_text() == "512"


def test_apply_places_kernels_even_when_the_weight_cannot_be_written(tmp_path, caplog):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "notebook-kernels").write_text("not a directory")
    parent, report = cgroups.apply("/notebook-kernels", 512, V1, local=True, root=tmp_path)
    assert parent == "/notebook-kernels" and report["cpu_shares"] is None
    assert "Could not set the CPU weight" in report["problem"]
    assert "Could not set the CPU weight" in caplog.text
