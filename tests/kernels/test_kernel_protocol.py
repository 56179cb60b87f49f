"""The kernel image and the gateway agree on the protocol number the image is labelled with."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.kernels.docker import KERNEL_PROTOCOL, LABEL_PROTOCOL, protocol_mismatch

DOCKERFILE = Path(__file__).resolve().parents[2] / "images" / "kernel" / "Dockerfile"


def test_the_image_is_labelled_with_the_gateways_protocol():
    labels = re.findall(r'^LABEL (\S+)="([^"]*)"$', DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert labels == [(LABEL_PROTOCOL, KERNEL_PROTOCOL)]


def test_a_container_of_another_or_no_protocol_is_a_mismatch():
    assert protocol_mismatch({LABEL_PROTOCOL: KERNEL_PROTOCOL}) is None
    assert "protocol is 1," in (protocol_mismatch({LABEL_PROTOCOL: "1"}) or "")
    assert "protocol is older" in (protocol_mismatch({}) or "")
    assert "protocol is older" in (protocol_mismatch(None) or "")
