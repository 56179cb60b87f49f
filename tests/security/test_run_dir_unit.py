"""RunDir's guarantees without a sandbox: what the gateway makes cannot be swapped, and a
kernel socket that is not a socket of the kernel's is refused (issue #10, C1)."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from gateway.kernels.rundir import CHANNELS, PORTS, SOCKET_PREFIX, RunDir, remove_run_dir

ROOT = os.geteuid() == 0


def _make(tmp_path, *, quota_mb=0, uid=None) -> RunDir:
    return RunDir.create(
        tmp_path / "run",
        uid=uid,
        quota_mb=quota_mb,
        quota_inodes=64,
        key="ab" * 32,
        kernel_dir="/run/kernel",
    )


def test_layout_and_connection_file(tmp_path):
    run_dir = _make(tmp_path, uid=4321 if ROOT else None)
    try:
        top = run_dir.path
        assert sorted(p.name for p in top.iterdir()) == ["connection.json", "gateway", "sockets"]
        info = (top / "connection.json").read_text()
        assert '"ip": "/run/kernel/sockets/k"' in info
        assert oct((top / "connection.json").stat().st_mode & 0o777) == "0o644"
        assert oct((top / "gateway").stat().st_mode & 0o777) == "0o755"
        if ROOT:
            assert (top / "sockets").stat().st_uid == 4321
            assert (top / "gateway").stat().st_uid == 0
            assert top.stat().st_uid == 0
    finally:
        run_dir.close()
        asyncio.run(remove_run_dir(run_dir.path))
    assert not run_dir.path.exists()


def test_planted_files_in_sockets_are_refused(tmp_path):
    run_dir = _make(tmp_path)
    sockets = run_dir.path / "sockets"
    host = socket.socket(socket.AF_UNIX)
    host.bind(str(tmp_path / "host.sock"))
    try:
        os.symlink(tmp_path / "host.sock", sockets / "k-1")
        with pytest.raises(OSError, match="not a socket it owns"):
            run_dir.sockets_ready()
        os.unlink(sockets / "k-1")
        (sockets / "k-1").write_text("a file")
        with pytest.raises(OSError, match="not a socket it owns"):
            run_dir.sockets_ready()
        os.unlink(sockets / "k-1")
        assert run_dir.sockets_ready() is False, "not bound yet"
    finally:
        host.close()
        run_dir.close()
        asyncio.run(remove_run_dir(run_dir.path))


@pytest.mark.skipif(not ROOT, reason="making a socket another uid owns needs root")
def test_a_socket_of_another_owner_is_not_ready_until_it_is_the_kernels(tmp_path):
    """gVisor's file proxy binds a kernel's socket on the host and then gives it to the
    kernel's uid: seen in between it is not ready (never pinned), and ready once it is."""
    run_dir = _make(tmp_path, uid=4321)
    sockets = run_dir.path / "sockets"
    bound = []
    try:
        for channel in CHANNELS:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(sockets / f"{SOCKET_PREFIX}-{PORTS[channel]}"))  # root's, for now
            bound.append(sock)
        assert run_dir.sockets_ready() is False
        assert run_dir.socket_urls() == {}, "nothing pinned"
        for channel in CHANNELS:
            os.chown(sockets / f"{SOCKET_PREFIX}-{PORTS[channel]}", 4321, 4321)
        assert run_dir.sockets_ready() is True
        assert set(run_dir.socket_urls()) == set(CHANNELS)
    finally:
        for sock in bound:
            sock.close()
        run_dir.close()
        asyncio.run(remove_run_dir(run_dir.path))


def test_fifo_is_made_and_opened_without_following_links(tmp_path):
    run_dir = _make(tmp_path, uid=4321 if ROOT else None)
    try:
        fd = run_dir.make_fifo("frame-1")
        info = os.fstat(fd)
        if ROOT:
            assert info.st_uid == 4321, "re-owned through the descriptor"
        os.close(fd)
        run_dir.unlink("frame-1")
        # Were the name taken by a symlink (it cannot be: gateway/ is the gateway's), the
        # mkfifo fails rather than following it.
        os.symlink(tmp_path, run_dir.gateway_dir / "frame-2")
        with pytest.raises(FileExistsError):
            run_dir.make_fifo("frame-2")
    finally:
        run_dir.close()
        asyncio.run(remove_run_dir(run_dir.path))


@pytest.mark.skipif(not ROOT, reason="the tmpfs quota needs root")
def test_quota_tmpfs_limits_size_and_is_removed_by_one_unmount(tmp_path):
    run_dir = _make(tmp_path, quota_mb=1)
    path = run_dir.path
    try:
        with pytest.raises(OSError, match="No space left"), open(path / "sockets" / "f", "wb") as f:
            for _ in range(4):
                f.write(b"x" * (512 * 1024))
                f.flush()
        for depth in range(40):  # deep and many: removal is the unmount, whatever is inside
            (path / "sockets" / ("d/" * depth)).mkdir(exist_ok=True)
    finally:
        run_dir.close()
        asyncio.run(remove_run_dir(path))
    assert not path.exists()


def test_reopen_refuses_a_gateway_dir_it_does_not_own(tmp_path):
    run_dir = _make(tmp_path)
    run_dir.close()
    try:
        assert RunDir.reopen(run_dir.path, uid=None).gateway_dir.is_dir()
        (run_dir.path / "gateway").chmod(0o777)
        with pytest.raises(OSError):
            RunDir.reopen(run_dir.path, uid=None)
    finally:
        asyncio.run(remove_run_dir(run_dir.path))


def test_create_never_reuses_an_existing_directory(tmp_path):
    existing = tmp_path / "run"
    existing.mkdir()
    (existing / "keep").write_text("x")
    with pytest.raises(FileExistsError):
        _make(tmp_path)
    assert (existing / "keep").read_text() == "x", "left as it was"
