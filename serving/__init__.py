"""How govshare's HTTP services are served: uvicorn (uvloop, httptools), a maintained ASGI server,
with the limits every service that faces other departments keeps (``serving.limits``), run in the
foreground with signal handling or on a thread for tests and the demo (``serving.server``), over
https and mutual TLS when configured (``serving.tls``). Imports
nothing else of govshare."""

from serving.limits import ServeLimits
from serving.server import ServerThread, serve
from serving.tls import ServerTls, TlsSettingError, server_tls

__all__ = ["ServeLimits", "ServerThread", "ServerTls", "TlsSettingError", "serve", "server_tls"]
