"""A JSON-RPC gateway in front of the test chain, as hosted endpoints are (a path, credentials,
https): it records what it was sent and forwards it to the chain. Knobs make it misbehave for real:
``close_after_answer`` closes every connection right after answering although it announced
keep-alive (as a server whose idle timeout is short does), so the client's next call finds its
kept-alive connection stale; ``answer_garbage`` answers HTML; ``estimates_to_drop`` leaves that many
``eth_estimateGas`` calls unanswered (as ganache drops one now and then)."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import urllib.request


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RpcGateway

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        gateway = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        method = json.loads(body)["method"]
        gateway.seen.append((self.path, self.headers.get("Authorization")))
        gateway.methods.append(method)
        if method == "eth_estimateGas":
            gateway.estimates += 1
            if gateway.estimates_to_drop > 0:
                gateway.estimates_to_drop -= 1
                gateway.released.wait(30)  # no answer
                self.close_connection = True
                return
        if gateway.answer_garbage:
            reply = b"<html>502 Bad Gateway</html>"
        else:
            forward = urllib.request.Request(gateway.upstream, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(forward, timeout=10) as answer:
                reply = answer.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.wfile.flush()
        if gateway.close_after_answer:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class RpcGateway(http.server.ThreadingHTTPServer):
    """``RpcGateway(upstream)`` (``tls``: a server-side context makes it https); ``start()``, then
    ``stop()``; ``url`` while it runs."""

    daemon_threads = True

    def __init__(self, upstream: str, *, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.upstream = upstream
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server_address[1]}"
        self.seen: list[tuple[str, str | None]] = []
        self.methods: list[str] = []
        self.close_after_answer = False
        self.answer_garbage = False
        self.estimates = 0
        self.estimates_to_drop = 0
        self.released = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> RpcGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()
