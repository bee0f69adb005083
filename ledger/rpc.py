"""The one JSON-RPC provider: every call govshare makes to a chain node goes through :class:`JsonRpc`.

Plain calls (:meth:`JsonRpc.call`, :meth:`JsonRpc.batch`) are what the hot paths use: the oracle's
head reads and access checks, the batcher's anchoring, the auditors' index sync. web3 is given the
same provider (:class:`Web3Provider`, a ``JSONBaseProvider`` that posts through it), so that its
contract calls, transactions and receipts share the same kept-alive connections, TLS settings,
credentials and timeouts, and nothing reaches the node another way.

A node that cannot be reached (refused, reset, TLS failure, an answer that is not JSON-RPC or is
over :data:`MAX_RPC_ANSWER_BYTES`) raises :class:`ledger.errors.ChainUnavailable`; a call left
unanswered within its timeout raises :class:`RpcUnanswered` (a ``ChainUnavailable``: its socket is
closed, so a late answer can never be read as another call's); an error answer raises
:class:`RpcErrorAnswer`, kept undecoded (callers that need a revert decoded by name repeat the call
through web3, whose error carries the revert data).
"""

from __future__ import annotations

import base64
from typing import Any

import httptools
import orjson
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from ledger.errors import ChainUnavailable, TransactionFailed
from ledger.http_client import AnswerTooLarge, KeepAlivePool, Origin, ResponseReader
from ledger.tls import ClientTls

__all__ = ["MAX_RPC_ANSWER_BYTES", "JsonRpc", "RpcErrorAnswer", "RpcUnanswered", "Web3Provider"]

#: The largest JSON-RPC answer read (an answer is a node's, not a stranger's, but a misconfigured
#: endpoint must not exhaust memory).
MAX_RPC_ANSWER_BYTES = 256 << 20


class RpcErrorAnswer(TransactionFailed):
    """The node answered a JSON-RPC call with an error object (kept undecoded in ``error``)."""

    def __init__(self, method: str, error: Any) -> None:
        self.method = method
        self.error = error
        message = error.get("message") if isinstance(error, dict) else error
        super().__init__(f"{method} refused: {message}")


class RpcUnanswered(ChainUnavailable):
    """The node took the call but sent no answer in time (the connection was closed)."""


class JsonRpc:
    """One JSON-RPC endpoint (``http://`` or ``https://``; ``user:password@`` in the URL is sent as
    HTTP basic authentication) over kept-alive HTTP/1.1 connections of govshare's one HTTP client;
    thread-safe. ``tls`` for an https node: the certificate authorities trusted instead of the
    system's (a consortium's own CA), and the client certificate to present (mutual TLS)."""

    def __init__(self, url: str, *, timeout: float = 30.0, tls: ClientTls | None = None, max_idle: int = 8) -> None:
        self.url = url
        self.timeout = timeout
        origin = Origin(url)
        credentials = b""
        if origin.username is not None:
            token = base64.b64encode(f"{origin.username}:{origin.password or ''}".encode()).decode()
            credentials = f"Authorization: Basic {token}\r\n".encode()
        target = origin.path + (f"?{origin.query}" if origin.query else "")
        self._head = (f"POST {target} HTTP/1.1\r\nHost: {origin.host_header}\r\n"
                      "Content-Type: application/json\r\nAccept-Encoding: identity\r\n").encode() + credentials
        self._pool = KeepAlivePool(origin, max_idle=max_idle, ssl_context=(tls or ClientTls()).context() if origin.tls else None)

    def close(self) -> None:
        self._pool.close()

    def post(self, body: bytes, *, what: str = "a call", timeout: float | None = None) -> Any:
        """Post one JSON-RPC request (or batch) body; the decoded JSON answer, whatever it says."""
        timeout = self.timeout if timeout is None else timeout
        request = self._head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        try:
            reply = self._pool.exchange(request, ResponseReader(MAX_RPC_ANSWER_BYTES), timeout=timeout)
            return orjson.loads(reply.body())
        except TimeoutError as exc:  # the socket is closed, never reused: a late answer cannot be misread
            raise RpcUnanswered(f"{self.url} did not answer {what} within {timeout:.1f}s") from exc
        except (OSError, httptools.HttpParserError, AnswerTooLarge, ValueError) as exc:  # orjson's error is a ValueError
            raise ChainUnavailable(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from exc

    def call(self, method: str, params: list[Any], *, timeout: float | None = None) -> Any:
        """The ``result`` of one call, as the node sent it (hex strings); :class:`RpcErrorAnswer` for
        an error answer."""
        answer = self.post(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
                           what=method, timeout=timeout)
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise ChainUnavailable(f"{self.url} answered {method} with something that is not JSON-RPC")
        if answer.get("error") is not None:
            raise RpcErrorAnswer(method, answer["error"])
        return answer["result"]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """The results of ``calls`` sent as one batched request, in the order of ``calls``;
        :class:`RpcErrorAnswer` if any is refused (or the node refuses batches)."""
        if not calls:
            return []
        body = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
        answer = self.post(body, what=f"a batch of {len(calls)} {calls[0][0]}")
        if isinstance(answer, dict):  # a node that refuses batches answers one error object
            raise RpcErrorAnswer(calls[0][0], answer.get("error", answer))
        if not isinstance(answer, list) or len(answer) != len(calls):
            raise ChainUnavailable(f"{self.url} answered a batch of {len(calls)} with something else")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        results = []
        for i, (method, _) in enumerate(calls):
            item = by_id.get(i)
            if item is None:
                raise ChainUnavailable(f"{self.url} left call {i} ({method}) of a batch unanswered")
            if item.get("error") is not None:
                raise RpcErrorAnswer(method, item["error"])
            results.append(item.get("result"))
        return results


class Web3Provider(JSONBaseProvider):
    """web3's provider on :class:`JsonRpc`: web3 encodes and decodes, :class:`JsonRpc` carries.
    Transport failures raise :class:`ChainUnavailable`; error answers go back to web3, which turns
    them into its own exceptions (a revert's data included)."""

    def __init__(self, rpc: JsonRpc) -> None:
        super().__init__()
        self.rpc = rpc

    def __repr__(self) -> str:
        return f"<Web3Provider {self.rpc.url}>"

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return self.rpc.post(self.encode_rpc_request(method, params), what=str(method))

    def make_batch_request(self, batch_requests: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse] | RPCResponse:
        answer = self.rpc.post(self.encode_batch_rpc_request(batch_requests), what="a batch")
        if isinstance(answer, list):
            answer.sort(key=lambda item: item.get("id", 0) if isinstance(item, dict) else 0)
        return answer

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            self.rpc.call("web3_clientVersion", [])
        except (ChainUnavailable, RpcErrorAnswer):
            if show_traceback:
                raise
            return False
        return True
