"""The dashboard's sign-in sessions: server-side, random ids in a cookie, only their hashes kept."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from fastapi import Request

__all__ = ["COOKIE", "SESSION_SECONDS", "DashboardSessions", "sessions_of"]

COOKIE = "govshare_dashboard"
SESSION_SECONDS = 8 * 3600


class DashboardSessions:
    """Server-side sessions: sha256(session id) → (account, expiry). Ids are 256-bit random; only
    their hashes are kept, so a memory dump does not yield a usable cookie. Lost on restart."""

    def __init__(self, lifetime: float = SESSION_SECONDS, limit: int = 10_000) -> None:
        self.lifetime, self.limit = lifetime, limit
        self._lock = threading.Lock()
        self._sessions: dict[bytes, tuple[str, float, bytes]] = {}

    @staticmethod
    def _key(session_id: str) -> bytes:
        return hashlib.sha256(session_id.encode("utf-8", "replace")).digest()

    def open(self, account: str, token_digest: bytes = b"") -> str:
        """A new session for ``account``, signed in with the token of SHA-256 ``token_digest``;
        returns the id to put in the cookie."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            for key in [k for k, (_, expires, _) in self._sessions.items() if expires <= now]:
                del self._sessions[key]
            if len(self._sessions) >= self.limit:  # drop the oldest rather than grow without bound
                del self._sessions[min(self._sessions, key=lambda k: self._sessions[k][1])]
            self._sessions[self._key(session_id)] = (account, now + self.lifetime, token_digest)
        return session_id

    def account(self, session_id: str | None) -> str | None:
        """The session's account, or None (unknown or expired)."""
        found = self.session(session_id)
        return found[0] if found is not None else None

    def session(self, session_id: str | None) -> tuple[str, bytes] | None:
        """The session's account and the SHA-256 of the token it signed in with, or None (unknown or expired)."""
        if not session_id or len(session_id) > 200:
            return None
        with self._lock:
            entry = self._sessions.get(self._key(session_id))
            if entry is None:
                return None
            if entry[1] <= time.time():
                del self._sessions[self._key(session_id)]
                return None
            return entry[0], entry[2]

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(self._key(session_id), None)


_sessions_lock = threading.Lock()


def sessions_of(request: Request) -> DashboardSessions:
    state = request.app.state
    sessions = getattr(state, "dashboard_sessions", None)
    if sessions is None:
        with _sessions_lock:
            sessions = getattr(state, "dashboard_sessions", None)
            if sessions is None:
                sessions = state.dashboard_sessions = DashboardSessions()
    return sessions
