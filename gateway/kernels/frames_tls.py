"""The TLS identity of a tcp kernel's data-frame channel.

CurveZMQ (libsodium's XSalsa20-Poly1305, in libzmq) carries every other tcp channel; it
encrypts about 0.7 GB/s here, under half of what a raw pyarrow write makes, so data frames
travel in TLS 1.3 instead (AES-GCM, with the CPU's AES instructions: ~1.5 GB/s end to end on
the same loopback, measured in docs/benchmarks.md).

Both ends hold the same per-kernel identity: an Ed25519 key and a self-signed certificate,
both derived from the kernel's Curve secret (so the records that re-attach a kernel need
nothing new, and the certificate is the same bytes every time: Ed25519 signs
deterministically). Each end trusts that certificate and nothing else and requires the other
to present it, so only a holder of the kernel's key — the kernel or the gateway — can take
either side, and a listener learns nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import ssl
from typing import Final

_LABEL: Final = b"notebook-gateway frames tls 1\x00"
_NAME: Final = "notebook-gateway kernel"
_KEY_HEADER: Final = b"-----BEGIN PRIVATE KEY-----"


def identity(curve_secret: bytes) -> bytes:
    """PEM of the kernel's certificate followed by its private key (PKCS#8), a pure function
    of `curve_secret` (the kernel's Z85 Curve secret)."""
    from cryptography import x509  # noqa: PLC0415 - tcp kernels only
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    seed = hashlib.sha256(_LABEL + curve_secret).digest()
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _NAME)])
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number((int.from_bytes(seed[:16], "big") >> 1) | 1)
        .not_valid_before(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, None)
    )
    return certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def client_context(pem: bytes) -> ssl.SSLContext:
    """The gateway's side: TLS 1.3 only, presenting `pem` and accepting only the same
    certificate from the kernel (no host name: the address comes from the engine)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    certificate, found, _ = pem.partition(_KEY_HEADER)
    if not found:
        msg = "not a certificate followed by its key"
        raise ValueError(msg)
    context.load_verify_locations(cadata=certificate.decode("ascii"))
    # the key stays in memory: an anonymous file read through /proc, never on a disk
    fd = os.memfd_create("kernel-frames-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return context
