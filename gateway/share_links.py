"""Share-link secrets: password hashes, signed share tokens, and failed-login throttling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import jwt

from gateway.clock import Clock

_ALGORITHM: Final = "pbkdf2_sha256"
_AUDIENCE: Final = "SHARING_PASSWORD_PROTECTED"
SHARE_TOKEN_TTL: Final = timedelta(hours=24)
SHARE_COOKIE: Final = "posthog_sharing_token"
KNOWN_SETTINGS: Final = (
    "whitelabel",
    "noHeader",
    "showInspector",
    "legend",
    "detailed",
    "hideExtraDetails",
    "theme",
)


def new_access_token() -> str:
    """A fresh random share-link token (22 random bytes, URL-safe), drawn by the sharing API for a
    new config and for each rotation.
    """
    return secrets.token_urlsafe(22)


def new_share_password() -> str:
    """A random share password (16 random bytes, URL-safe), for a create-password request that
    brings none.
    """
    return secrets.token_urlsafe(16)


def hash_password(raw: str, *, iterations: int) -> str:
    """Django-compatible `pbkdf2_sha256$<iterations>$<salt>$<b64 hash>` (CPU-heavy: off-loop)."""
    salt = secrets.token_urlsafe(16)
    digest = hashlib.pbkdf2_hmac("sha256", raw.encode(), salt.encode(), iterations)
    return f"{_ALGORITHM}${iterations}${salt}${base64.b64encode(digest).decode()}"


def check_password(raw: str, encoded: str) -> bool:
    """Constant-time check of `raw` against a stored hash (CPU-heavy: off-loop)."""
    try:
        algorithm, iterations, salt, expected = encoded.split("$", 3)
        rounds = int(iterations)
    except ValueError:
        return False
    if algorithm != _ALGORITHM:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", raw.encode(), salt.encode(), rounds)
    return hmac.compare_digest(base64.b64encode(digest).decode(), expected)


@dataclass(frozen=True, kw_only=True)
class ShareClaims:
    """What a share token carries: the password that unlocked it, the project, and the share link's
    `access_token` it is valid for.
    """

    share_password_id: int
    project_id: int
    access_token: str


class ShareTokens:
    """Issues and checks the 24 h JWTs a correct share password buys."""

    def __init__(self, secret: str, clock: Clock) -> None:
        self._secret = secret
        self._clock = clock

    def issue(self, claims: ShareClaims) -> str:
        """A signed HS256 JWT for `claims`, expiring SHARE_TOKEN_TTL after the clock's now; the
        share unlock handler issues it after a correct password.
        """
        now = self._clock.now()
        payload: dict[str, Any] = {
            "share_password_id": claims.share_password_id,
            "team_id": claims.project_id,
            "access_token": claims.access_token,
            "aud": _AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int((now + SHARE_TOKEN_TTL).timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def verify(self, token: str, access_token: str) -> ShareClaims | None:
        """Claims of a valid, unexpired token issued for `access_token`, else None."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                options={"verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        if int(payload.get("exp", 0)) <= self._clock.now().timestamp():
            return None
        if not hmac.compare_digest(str(payload.get("access_token", "")), access_token):
            return None
        try:
            return ShareClaims(
                share_password_id=int(payload["share_password_id"]),
                project_id=int(payload["team_id"]),
                access_token=access_token,
            )
        except (KeyError, TypeError, ValueError):
            return None


class ShareLoginLimiter:
    """Counts failed share-password attempts per (link, client) in a sliding window."""

    def __init__(self, clock: Clock, *, max_failures: int, window_s: float) -> None:
        self._clock = clock
        self._max = max_failures
        self._window = timedelta(seconds=window_s)
        self._failures: defaultdict[tuple[str, str], deque[datetime]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[datetime]:
        attempts = self._failures[key]
        cutoff = self._clock.now() - self._window
        while attempts and attempts[0] <= cutoff:
            attempts.popleft()
        if not attempts:
            del self._failures[key]
            return deque()
        return attempts

    def retry_after(self, key: tuple[str, str]) -> int | None:
        """Seconds to wait when `key` is over its budget, else None."""
        attempts = self._recent(key)
        if len(attempts) < self._max:
            return None
        wait = attempts[0] + self._window - self._clock.now()
        return max(1, int(wait.total_seconds()) + 1)

    def record_failure(self, key: tuple[str, str]) -> None:
        """Count one failed attempt for `key` (link token, client address) at the clock's now; the
        share unlock handler calls it on a wrong password.
        """
        self._failures[key].append(self._clock.now())
