"""Running the app on uvicorn with a hostile network in mind: the listening socket, header limits and timeouts.

* The socket is bound before the model loads (``bind``): a busy port is one line, not uvicorn's log.
* HTTP/1.1 is parsed by h11, not httptools: h11 refuses a request head over ``MAX_HEADER_BYTES`` before it is
  all read (``h11_max_incomplete_event_size``; 400), where httptools buffers any size (a 10 MB header line).
  The header count is checked by ``middleware.HeaderGuard`` (431), as is the size again, for any other server.
* A request's headers must arrive within ``header_timeout`` seconds, or the connection is closed (uvicorn has no
  such timeout: a client sending one byte a second would hold its connection forever); its body then has
  ``Limits.body_timeout`` (``middleware.BodyLimit``: 408). Idle keep-alive connections close after 5 s.
"""

from __future__ import annotations

import errno
import socket

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import FashionCNNError
from .limits import BODY_TIMEOUT, MAX_HEADER_BYTES

KEEP_ALIVE_S = 5


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening), or a one-line ``FashionCNNError`` saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise FashionCNNError(f"cannot listen on {host!r} ({e.strerror}); check --host") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise FashionCNNError(
                f"port {port} on {host} is already in use (another server?); stop it, or choose another port with --port"
            ) from None
        raise FashionCNNError(f"cannot listen on {host}:{port} ({e.strerror or e}); check --host and --port") from None
    sock.set_inheritable(True)
    return sock


def serve(app, sock: socket.socket, *, header_timeout: float = BODY_TIMEOUT, access_log: bool = False) -> None:
    """Serve ``app`` on the bound ``sock`` until Ctrl+C."""

    class Protocol(_HeaderTimeout):
        timeout_s = header_timeout

    config = uvicorn.Config(
        app,
        http=Protocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=KEEP_ALIVE_S,
        access_log=access_log,
        log_level="info",
    )
    uvicorn.Server(config).run(sockets=[sock])


class _HeaderTimeout(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers do not all arrive within ``timeout_s``
    (from the connection's start, or from the previous response)."""

    timeout_s = BODY_TIMEOUT
    _head_timer = None
    _waiting_for = None  # the cycle that was current when the timer was armed: a new one means the head arrived

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self._head_timer is not None and self.cycle is not self._waiting_for:
            self._head_timer.cancel()
            self._head_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._waiting_for = self.cycle
        self._head_timer = self.loop.call_later(self.timeout_s, self._too_slow)

    def _too_slow(self) -> None:
        self._head_timer = None
        idle = self.cycle is None or self.cycle.response_complete  # not in the middle of a (pipelined) request
        if self.cycle is self._waiting_for and idle and not self.transport.is_closing():
            self.logger.info(
                "%s sent no complete request head within %g s; connection closed", self.client and self.client[0], self.timeout_s
            )
            self.transport.close()
