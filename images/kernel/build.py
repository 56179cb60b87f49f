"""Build the kernel image (or reuse an up-to-date one); prints its tag.

    python images/kernel/build.py [--tag-prefix gateway-kernel]

Base: `python:3.11-slim-bookworm`, else Debian bookworm bootstrapped offline. Wheels for
CPython 3.11 are downloaded on the host into `.cache/kernel-wheels/`. See images/imagebuild.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import imagebuild

HERE = Path(__file__).resolve().parent
FILES = [HERE / "Dockerfile", HERE / "requirements.txt", HERE / "gateway_kernel.py"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tag-prefix", default="gateway-kernel")
    prefix = parser.parse_args().tag_prefix
    base = imagebuild.choose_base(
        "python:3.11-slim-bookworm", "gateway-base:bookworm", suite="bookworm"
    )
    tag = f"{prefix}:{imagebuild.content_hash(FILES, base)}"
    if imagebuild.has_image(tag):
        imagebuild.log(f"{tag} is up to date")
    else:
        wheels = imagebuild.ROOT / ".cache" / "kernel-wheels"
        imagebuild.download_wheels(
            wheels, ["-r", str(HERE / "requirements.txt")], python_version="3.11"
        )
        imagebuild.build(tag, files=FILES, wheels=wheels, base=base)
    imagebuild.docker("tag", tag, f"{prefix}:latest")
    print(tag)


if __name__ == "__main__":
    main()
