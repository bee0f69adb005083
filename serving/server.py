"""Run an ASGI app with uvicorn under govshare's limits: :func:`serve` in the foreground (SIGINT and
SIGTERM stop it gracefully: no new connections, idle ones closed, answers in progress finished
within ``shutdown_seconds``), :class:`ServerThread` on a thread of its own (tests, the demo).

The settings every service shares: uvloop and httptools (the fastest of uvicorn's options), no
websockets, no lifespan events (the apps have none), no access log (an access is recorded where it
matters: the oracle's audit trail), the keep-alive timeout and the other limits of
:class:`~serving.limits.ServeLimits` (through :class:`~serving.limits.LimitedHttpToolsProtocol`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Generator, Mapping
from typing import Any

import uvicorn
import uvloop

from serving.limits import LimitedHttpToolsProtocol, ServeLimits

__all__ = ["ServerThread", "serve", "uvicorn_config"]


def uvicorn_config(app: Any, host: str, port: int, limits: ServeLimits = ServeLimits(), *,
                   tls: Mapping[str, Any] | None = None, log_level: str = "warning") -> uvicorn.Config:
    """The uvicorn configuration of a govshare service. ``tls``: uvicorn's ``ssl_*`` options
    (``ssl_certfile``, ``ssl_keyfile``, ``ssl_ca_certs``, ``ssl_cert_reqs``, ``ssl_context_factory``)
    for https, as :meth:`serving.tls.ServerTls.uvicorn_options` gives them."""
    config = uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http=LimitedHttpToolsProtocol, ws="none", lifespan="off",
        access_log=False, log_level=log_level, server_header=False, proxy_headers=False,
        timeout_keep_alive=limits.keep_alive_seconds,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=limits.shutdown_seconds,  # type: ignore[arg-type]
        **(tls or {}),
    )
    config.govshare_limits = limits  # type: ignore[attr-defined]  # read by LimitedHttpToolsProtocol
    return config


class _BoundedHandshakeLoop(uvloop.Loop):  # type: ignore[misc]
    """uvloop's loop, except that a TLS server it creates drops a client whose handshake is not done
    within ``handshake_seconds``: asyncio's default is 60 s, so a connection that never sends a byte
    would stay twelve times longer over https than over http (where ``keep_alive_seconds`` closes
    it), out of reach of the protocol's timers, which start only once the handshake is done."""

    handshake_seconds: float = 5.0

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", self.handshake_seconds)
        return await super().create_server(*args, **kwargs)


class _Server(uvicorn.Server):
    """uvicorn's server, except that after a graceful stop on SIGINT or SIGTERM it returns to its
    caller instead of raising the signal again (uvicorn re-raises it, which kills the process before
    the caller's clean-up: the oracle still has its outbox to flush and its anchoring process to stop),
    and that a TLS handshake is bounded by ``keep_alive_seconds`` (:class:`_BoundedHandshakeLoop`)."""

    def run(self, sockets: Any = None) -> None:
        limits: ServeLimits = self.config.govshare_limits  # type: ignore[attr-defined]

        def new_loop() -> asyncio.AbstractEventLoop:
            loop = _BoundedHandshakeLoop()
            loop.handshake_seconds = limits.keep_alive_seconds
            return loop

        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(self.serve(sockets=sockets))

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(app: Any, host: str, port: int, limits: ServeLimits = ServeLimits(), *,
          tls: Mapping[str, Any] | None = None) -> None:
    """Serve ``app`` on ``host:port`` until SIGINT or SIGTERM; then return (the caller cleans up)."""
    _Server(uvicorn_config(app, host, port, limits, tls=tls, log_level="info")).run()


class ServerThread:
    """A govshare server on 127.0.0.1 in a background thread (tests, the demo): ``start()``, ``url``,
    ``stop()`` (graceful, as a signal would be)."""

    def __init__(self, app: Any, port: int, *, tls: Mapping[str, Any] | None = None, **limits: Any) -> None:
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        self.server = _Server(uvicorn_config(app, "127.0.0.1", port, ServeLimits(**limits), tls=tls))
        self.thread = threading.Thread(target=self.server.run, name=f"govshare-server-{port}", daemon=True)

    def start(self, timeout: float = 20.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server at {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout)
