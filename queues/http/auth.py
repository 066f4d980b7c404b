"""JWT bearer tokens for the ops API (seed §1.3, §10.2).

Tokens are HS256 (``JWT_SECRET``) or RS256 (``JWT_PUBLIC_KEY``); ``exp``,
``nbf``, ``iss`` and ``aud`` are checked and ``alg=none`` is never accepted.
The token's ``sub`` is the client id; its ``scope`` (space-separated) maps to
the seed's access checks:

==================  ===================================================
``queues:view``     ``canViewQueue`` (read status, jobs, dead letters)
``queues:enqueue``  ``canEnqueueJob``
``queues:manage``   ``canManageQueue`` (pause, scale, requeue, ...);
                    implies view
==================  ===================================================

Each may be limited to one queue: ``queues:manage:photo-processing``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from queues.conf import settings
from queues.exceptions import ConfigurationError

ACTIONS = ("view", "enqueue", "manage")
IMPLIED = {"view": ("view", "manage"), "enqueue": ("enqueue",), "manage": ("manage",)}


@dataclass(frozen=True)
class Principal:
    """Who called: the token's subject and scopes."""

    client_id: str
    scopes: frozenset[str]

    def can(self, action: str, queue: str | None = None) -> bool:
        """True when a scope grants ``action`` on ``queue`` (or on every queue)."""
        for granting in IMPLIED[action]:
            if f"queues:{granting}" in self.scopes:
                return True
            if queue is not None and f"queues:{granting}:{queue}" in self.scopes:
                return True
        return False

    @property
    def actor(self) -> str:
        return f"client:{self.client_id}"


def _verification_keys() -> list[tuple[str, str]]:
    found = []
    if settings.JWT_SECRET:
        found.append(("HS256", settings.JWT_SECRET))
    if settings.JWT_PUBLIC_KEY:
        found.append(("RS256", settings.JWT_PUBLIC_KEY))
    return found


def verify(token: str) -> Principal | None:
    """The principal of a valid token, or None (expired, bad signature, wrong audience...)."""
    for algorithm, key in _verification_keys():
        try:
            claims = jwt.decode(
                token, key, algorithms=[algorithm], audience=settings.JWT_AUDIENCE,
                issuer=settings.JWT_ISSUER,
                options={"require": ["exp", "sub", "iss", "aud"]})
        except jwt.PyJWTError:
            continue
        scopes = claims.get("scope", "")
        return Principal(str(claims["sub"]), frozenset(str(scopes).split()))
    return None


def mint(client_id: str, scopes: list[str], *, ttl_s: int = 3600) -> str:
    """A signed token for ``client_id`` (RS256 with JWT_PRIVATE_KEY, else HS256).

    Raises:
        ConfigurationError: no signing key is configured, or a scope is unknown.
    """
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) not in (2, 3) or parts[0] != "queues" or parts[1] not in ACTIONS:
            raise ConfigurationError(
                f"unknown scope {scope!r}; use queues:view|enqueue|manage[:<queue>]")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": client_id, "scope": " ".join(scopes), "iat": now,
                              "nbf": now, "exp": now + ttl_s, "iss": settings.JWT_ISSUER,
                              "aud": settings.JWT_AUDIENCE}
    if settings.JWT_PRIVATE_KEY:
        return jwt.encode(claims, settings.JWT_PRIVATE_KEY, algorithm="RS256")
    if settings.JWT_SECRET:
        return jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")
    raise ConfigurationError("set JWT_SECRET (or JWT_PRIVATE_KEY for RS256) to mint tokens")
