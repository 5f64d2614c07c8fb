"""The app's login: accounts from REID_AUTH / REID_AUTH_FILE, checked in constant time, with failed attempts
throttled per user name and per client address.

Gradio's `auth=` callable only receives (username, password); the client address reaches it through a context
variable that a small ASGI middleware sets for every HTTP request (`ClientAddress`, installed through launch's
`app_kwargs`). The callable is async so the growing delay sleeps without blocking the server's event loop.

Policy (settings in brackets): every failure of a user name adds a delay before the next answer,
`delay * 2**(failures - 1)` capped at 4 s [REID_LOGIN_DELAY_S, default 0.5], a client's every 4 failures; after
`max_failures` failures
[REID_LOGIN_MAX_FAILURES, default 5 per user name, 4x that per client, since one office NAT may hold many users]
that name or client is locked out for `lockout` seconds [REID_LOGIN_LOCKOUT_S, default 30], doubled for each
further lockout up to an hour. While locked, answers are immediate 429s and the password is not even checked, so
a lockout cannot be used to keep guessing. A success clears that user name's record. An attempt counts as a
failure from the moment it starts (and is forgiven if it succeeds), so parallel guesses cannot slip past the limit.
The known cost: anyone can lock a user name out for a while by failing on purpose; the doubling is capped at an
hour so that stays a nuisance, not a permanent denial.
"""
from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from reid_core.errors import InputError

CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("reid_client_address", default="unknown")
MAX_DELAY_S = 4.0
MAX_LOCKOUT_S = 3600.0
CLIENT_FACTOR = 4  # a client may fail this many times more often than one user name
_TRACKED_MAX = 10_000  # records kept before quiet ones are dropped (random user names must not grow memory)


class ClientAddress:
    """ASGI middleware: remembers the peer address of the request being handled, for the login throttle. The
    socket's address, not X-Forwarded-For: a header is whatever the attacker writes."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        token = CLIENT.set((scope.get("client") or ("unknown", 0))[0])
        try:
            return await self.app(scope, receive, send)
        finally:
            CLIENT.reset(token)


@dataclass
class _Record:
    failures: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Delays and lockouts for failed logins (the module docstring gives the policy)."""

    max_failures: int = 5
    lockout_s: float = 30.0
    delay_s: float = 0.5
    clock: Callable[[], float] = time.monotonic
    _records: dict[tuple[str, str], _Record] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> LoginThrottle:
        def number(name: str, default: float, minimum: float) -> float:
            raw = os.environ.get(name)
            try:
                value = float(raw) if raw not in (None, "") else default
            except ValueError:
                raise InputError(f"{name} must be a number, got {raw!r}") from None
            if not value >= minimum:  # also refuses NaN
                raise InputError(f"{name} must be at least {minimum}, got {raw!r}")
            return value

        return cls(max_failures=int(number("REID_LOGIN_MAX_FAILURES", 5, 1)),
                   lockout_s=number("REID_LOGIN_LOCKOUT_S", 30.0, 0.0),
                   delay_s=number("REID_LOGIN_DELAY_S", 0.5, 0.0))

    def _limit(self, kind: str) -> int:
        return self.max_failures * (CLIENT_FACTOR if kind == "client" else 1)

    def begin(self, keys: list[tuple[str, str]]) -> tuple[float, float]:
        """Start an attempt: (seconds still locked, 0) if any key is locked, else (0, delay to wait). The attempt
        is counted as a failure now; `succeeded` forgives it."""
        now = self.clock()
        with self._lock:
            if len(self._records) > _TRACKED_MAX:
                self._forget_quiet(now)
            records = [(k, self._records.setdefault(k, _Record())) for k in keys]
            locked = max((r.locked_until - now for _, r in records), default=0.0)
            if locked > 0:
                return locked, 0.0
            delay = 0.0
            for (kind, _), r in records:
                # a client's delay grows CLIENT_FACTOR times slower, in step with its higher limit
                steps = r.failures // (CLIENT_FACTOR if kind == "client" else 1)
                if steps:
                    delay = max(delay, min(MAX_DELAY_S, self.delay_s * 2 ** (steps - 1)))
                r.failures += 1
                r.last = now
                if r.failures >= self._limit(kind):
                    r.locked_until = now + min(MAX_LOCKOUT_S, self.lockout_s * 2 ** r.lockouts)
                    r.lockouts += 1
                    r.failures = 0
            return 0.0, delay

    def succeeded(self, user_key: tuple[str, str], client_key: tuple[str, str]) -> None:
        with self._lock:
            self._records.pop(user_key, None)
            r = self._records.get(client_key)
            if r is not None and r.failures:
                r.failures -= 1  # this attempt was counted in advance

    def _forget_quiet(self, now: float) -> None:
        for k in [k for k, r in self._records.items() if r.locked_until < now and now - r.last > 3600]:
            del self._records[k]


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def load_accounts() -> dict[str, str]:
    """user -> password from REID_AUTH ("user:pass") and REID_AUTH_FILE (one "user:pass" per line); {} = no login."""
    accounts: dict[str, str] = {}
    spec = os.environ.get("REID_AUTH")
    if spec and ":" in spec:
        user, password = spec.split(":", 1)
        accounts[user.strip()] = password
    file = os.environ.get("REID_AUTH_FILE")
    if file:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as e:
            raise InputError(f"REID_AUTH_FILE {file}: cannot read it ({e.strerror or e})") from None
        for line in lines:
            if ":" in line:
                user, password = line.strip().split(":", 1)
                accounts[user.strip()] = password
    return accounts


def make_auth(accounts: dict[str, str], throttle: LoginThrottle | None = None
              ) -> Callable[[str, str], Awaitable[bool]]:
    """Gradio `auth=` callable over `accounts`, throttled."""
    from fastapi import HTTPException

    throttle = throttle or LoginThrottle.from_env()
    digests = {user: _digest(password) for user, password in accounts.items()}
    dummy = _digest(os.urandom(16).hex())

    async def check(username: str, password: str) -> bool:
        client = CLIENT.get()
        # unknown names share one record: a flood of invented names cannot grow memory or dodge the user limit
        user_key = ("user", username if username in digests else "\0unknown")
        client_key = ("client", client)
        locked, delay = throttle.begin([user_key, client_key])
        if locked:
            raise HTTPException(status_code=429, detail=f"Too many failed logins; try again in {locked:.0f} s.",
                                headers={"Retry-After": str(max(1, round(locked)))})
        if delay:
            await asyncio.sleep(delay)
        # compare against a dummy for unknown names too, so timing does not tell which names exist
        ok = hmac.compare_digest(_digest(password or ""), digests.get(username, dummy)) and username in digests
        if ok:
            throttle.succeeded(user_key, client_key)
        return ok

    check.throttle = throttle  # type: ignore[attr-defined]
    return check
