"""The service's two ASGI middlewares, which answer before any route: ``HeaderGuard`` (too many or too large
headers, a foreign Host) and ``BodyLimit`` (a body too large or too slow); and ``BadRequest``, the error every
part of the service raises for a client's mistake."""

from __future__ import annotations

from collections.abc import Iterable

import anyio
from fastapi.responses import JSONResponse

from .. import runtime
from .limits import LARGE_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADERS


class BadRequest(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class HeaderGuard:
    """Refuse, before anything else: more than ``MAX_HEADERS`` header lines or ``MAX_HEADER_BYTES`` of them (431;
    under uvicorn, h11 refuses an oversized head before it is all read, see server.py: this is for any server),
    and a Host header that is not one of ``allowed_hosts`` (400), so a DNS-rebinding page cannot read the API.
    Starlette's TrustedHostMiddleware would answer in plain text, and misreads ``[::1]:8000``."""

    def __init__(self, app, allowed_hosts: Iterable[str]):
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed = {_host_name(h) for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope["headers"]
        size = sum(len(k) + len(v) + 4 for k, v in headers)
        if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
            detail = f"the request has {len(headers)} header lines ({size:,} bytes); at most {MAX_HEADERS} and {MAX_HEADER_BYTES:,} bytes are accepted"
            return await JSONResponse({"detail": detail}, status_code=431, headers={"Connection": "close"})(scope, receive, send)
        host = next((v for k, v in headers if k == b"host"), None)  # none (HTTP/1.0): no browser sent it
        if host is not None and not self.any_host and _host_name(host.decode("latin-1")) not in self.allowed:
            name = _host_name(host.decode("latin-1"))[:100]
            detail = (
                f"this server does not answer to the Host {name!r} (a guard against DNS rebinding); "
                f"use http://127.0.0.1/ or localhost, or start it with --allowed-host {name}"
            )
            return await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
        return await self.app(scope, receive, send)


def _host_name(host: str) -> str:
    """``Example.COM:8000`` → ``example.com``, ``[::1]:8000`` → ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return (host.rsplit(":", 1)[0] if host.count(":") == 1 else host).rstrip(".")


class BodyLimit:
    """Refuse request bodies over ``max_bytes``: from Content-Length before reading, else while streaming; and
    bodies that take over ``timeout`` seconds to arrive, all of them (408): a slow client holds no worker for long."""

    def __init__(self, app, max_bytes: int, timeout: float = float("inf")):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await JSONResponse({"detail": "invalid Content-Length header"}, status_code=400)(scope, receive, send)
            if int(length) > self.max_bytes:
                return await JSONResponse({"detail": self._too_large()}, status_code=413)(scope, receive, send)
        seen = 0
        deadline = anyio.current_time() + self.timeout

        async def limited():
            nonlocal seen
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise BadRequest(
                    408, f"the request body did not arrive within {self.timeout:g} s; send it faster, or in smaller pieces"
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BadRequest(413, self._too_large())
            return message

        try:
            await self.app(scope, limited, send)
        finally:
            if seen > LARGE_BODY_BYTES:  # parsing it (even to refuse it) raised the C heap's peak: hand it back
                await anyio.to_thread.run_sync(runtime.release_memory)

    def _too_large(self) -> str:
        return f"the upload is larger than {self.max_bytes:,} bytes; send a smaller picture (or start the server with a larger --max-upload-mb)"
