"""Shared steps of the image builds (kernel, gateway): content-hash tags, offline bases, wheels.

- An image tagged `<prefix>:<content hash>` that already exists is reused: nothing rebuilds.
- Wheels are downloaded on the host for the image's platform and installed with `--no-index`:
  the build needs no network (hosts whose containers cannot reach the package index, or whose
  TLS is intercepted).
- When the official Python base cannot be found or pulled, a Debian base is bootstrapped with
  debootstrap and `docker import`ed (needs root; Debian's mirror must be reachable).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
DEBIAN_MIRROR = "http://deb.debian.org/debian"


def log(message: str) -> None:
    print(f"[image build] {message}", file=sys.stderr, flush=True)


def docker(*args: str, check: bool = True, quiet: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, text=True, capture_output=quiet)


def has_image(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def content_hash(files: Iterable[Path], *extra: str) -> str:
    digest = hashlib.sha256("\0".join(extra).encode())
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def choose_base(official: str, fallback: str, *, suite: str) -> str:
    """`official` when present or pullable, else `fallback` (bootstrapped from `suite`)."""
    if has_image(official):
        return official
    if has_image(fallback):
        return fallback
    log(f"pulling {official}")
    if docker("pull", official, check=False).returncode == 0:
        return official
    log(f"no registry reachable: bootstrapping Debian {suite} as {fallback}")
    bootstrap_base(suite, fallback)
    return fallback


def bootstrap_base(suite: str, tag: str) -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"debootstrap needs root (or load {tag}'s official base into the engine)")
    if shutil.which("debootstrap") is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "debootstrap"],
            check=True,
            capture_output=True,
            env=env,
        )
    with tempfile.TemporaryDirectory(prefix="gateway-rootfs-", dir="/var/tmp") as rootfs:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv",
                suite,
                rootfs,
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(Path(rootfs) / junk, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-", tag], stdin=tar.stdout, check=True, capture_output=True
        )
        if tar.wait() != 0:
            raise SystemExit("tar of the bootstrapped root failed")


def download_wheels(dest: Path, requirements: list[str], *, python_version: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    log(f"downloading wheels for CPython {python_version} on the host into {dest}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            *platforms,
            "--python-version",
            python_version,
            "--implementation",
            "cp",
            "-d",
            str(dest),
            *requirements,
            "pip",
        ],
        check=True,
    )


def build(tag: str, *, files: Iterable[Path], wheels: Path, base: str) -> None:
    """`docker build` a context of `files` plus `wheels/`, tagging `tag`."""
    with tempfile.TemporaryDirectory(prefix="gateway-ctx-") as ctx:
        for path in files:
            shutil.copy(path, Path(ctx) / path.name)
        shutil.copytree(wheels, Path(ctx) / "wheels")
        log(f"building {tag} on {base}")
        result = subprocess.run(
            ["docker", "build", "--build-arg", f"BASE={base}", "-t", tag, ctx],
            check=False,
            stdout=sys.stderr,
            stderr=sys.stderr,
        )
        if result.returncode != 0:
            raise SystemExit(f"docker build of {tag} failed")
