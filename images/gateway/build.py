"""Build the gateway's own image (or reuse an up-to-date one); prints its tag.

    python images/gateway/build.py [--tag-prefix notebook-gateway]

Base: `python:3.12-slim-bookworm`, else Debian trixie (Python 3.13) bootstrapped offline. The
gateway wheel is built from this checkout; its dependencies' wheels for the base's CPython are
downloaded on the host into `.cache/gateway-wheels/`. See images/imagebuild.py.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import imagebuild

HERE = Path(__file__).resolve().parent
OFFICIAL, FALLBACK = "python:3.12-slim-bookworm", "gateway-base:trixie"


def _python_version(base: str) -> str:
    return "3.12" if base == OFFICIAL else "3.13"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tag-prefix", default="notebook-gateway")
    prefix = parser.parse_args().tag_prefix
    base = imagebuild.choose_base(OFFICIAL, FALLBACK, suite="trixie")
    sources = [
        HERE / "Dockerfile",
        imagebuild.ROOT / "pyproject.toml",
        *sorted((imagebuild.ROOT / "gateway").rglob("*.py")),
        *sorted((imagebuild.ROOT / "gateway").rglob("*.sql")),
    ]
    tag = f"{prefix}:{imagebuild.content_hash(sources, base)}"
    if imagebuild.has_image(tag):
        imagebuild.log(f"{tag} is up to date")
    else:
        wheels = imagebuild.ROOT / ".cache" / "gateway-wheels"
        shutil.rmtree(wheels, ignore_errors=True)
        project = tomllib.loads((imagebuild.ROOT / "pyproject.toml").read_text())["project"]
        imagebuild.download_wheels(
            wheels, list(project["dependencies"]), python_version=_python_version(base)
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "-w",
                str(wheels),
                str(imagebuild.ROOT),
            ],
            check=True,
        )
        imagebuild.build(tag, files=[HERE / "Dockerfile"], wheels=wheels, base=base)
    imagebuild.docker("tag", tag, f"{prefix}:latest")
    print(tag)


if __name__ == "__main__":
    main()
