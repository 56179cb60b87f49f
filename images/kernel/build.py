"""Build the kernel image, reusing an up-to-date one.

    python images/kernel/build.py [--tag-prefix gateway-kernel] [--print-tag]

- The tag is `<prefix>:<content hash>` (Dockerfile, requirements, helper, base); `<prefix>:latest`
  points at it. An image with that tag already present is reused: nothing is rebuilt.
- Wheels for the image's platform (CPython 3.11, manylinux x86_64) are downloaded on the host
  into `.cache/kernel-wheels/` and installed with `--no-index`, so the build needs no network
  (hosts whose containers cannot reach the package index, or whose TLS is intercepted).
- The base is `python:3.11-slim-bookworm` when the engine has it or can pull it; otherwise a
  Debian bookworm base is bootstrapped with debootstrap and `docker import`ed (needs root).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = ROOT / ".cache" / "kernel-wheels"
OFFICIAL_BASE = "python:3.11-slim-bookworm"
BOOTSTRAP_BASE = "gateway-base:bookworm"
HASHED = ("Dockerfile", "requirements.txt", "gateway_kernel.py")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def _log(message: str) -> None:
    print(f"[kernel image] {message}", file=sys.stderr, flush=True)


def _docker(*args: str, check: bool = True, quiet: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, text=True,
                          capture_output=quiet)


def _has_image(ref: str) -> bool:
    return _docker("image", "inspect", ref, check=False).returncode == 0


def content_hash(base: str) -> str:
    digest = hashlib.sha256(base.encode())
    for name in HASHED:
        digest.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def choose_base() -> str:
    if _has_image(OFFICIAL_BASE):
        return OFFICIAL_BASE
    if _has_image(BOOTSTRAP_BASE):
        return BOOTSTRAP_BASE
    _log(f"pulling {OFFICIAL_BASE}")
    if _docker("pull", OFFICIAL_BASE, check=False).returncode == 0:
        return OFFICIAL_BASE
    _log("no registry reachable: bootstrapping a Debian bookworm base with debootstrap")
    bootstrap_base()
    return BOOTSTRAP_BASE


def bootstrap_base() -> None:
    if os.geteuid() != 0:
        raise SystemExit("debootstrap needs root; or load python:3.11-slim-bookworm into the engine")
    if shutil.which("debootstrap") is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True,
                       capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    with tempfile.TemporaryDirectory(prefix="gateway-rootfs-", dir="/var/tmp") as rootfs:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv",
             "bookworm", rootfs, "http://deb.debian.org/debian"],
            check=True, capture_output=True,
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(Path(rootfs) / junk, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", BOOTSTRAP_BASE], stdin=tar.stdout, check=True,
                       capture_output=True)
        if tar.wait() != 0:
            raise SystemExit("tar of the bootstrapped root failed")


def download_wheels() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
           *platforms, "--python-version", "3.11", "--implementation", "cp",
           "-d", str(CACHE), "-r", str(HERE / "requirements.txt"), "pip"]
    _log("downloading wheels on the host (cached in .cache/kernel-wheels)")
    subprocess.run(cmd, check=True)


def build(prefix: str) -> str:
    base = choose_base()
    tag = f"{prefix}:{content_hash(base)}"
    if _has_image(tag):
        _log(f"{tag} is up to date")
    else:
        download_wheels()
        with tempfile.TemporaryDirectory(prefix="gateway-kernel-ctx-") as ctx:
            for name in HASHED:
                shutil.copy(HERE / name, Path(ctx) / name)
            shutil.copytree(CACHE, Path(ctx) / "wheels")
            _log(f"building {tag} on {base}")
            result = _docker("build", "--build-arg", f"BASE={base}", "-t", tag, ctx,
                             check=False, quiet=False)
            if result.returncode != 0:
                raise SystemExit(f"docker build of {tag} failed")
    _docker("tag", tag, f"{prefix}:latest")
    return tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag-prefix", default="gateway-kernel")
    args = parser.parse_args()
    print(build(args.tag_prefix))


if __name__ == "__main__":
    main()
