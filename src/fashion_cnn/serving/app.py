"""The web service: a FastAPI app around one loaded model, with a page to upload or draw a picture.

    fashion-cnn serve runs/NAME                      # http://127.0.0.1:8000/  (API docs: /docs)
    curl -F file=@sneaker.jpg http://127.0.0.1:8000/predict
    curl --data-binary @sneaker.jpg http://127.0.0.1:8000/predict

Endpoints:
    POST /predict          one picture, as a multipart upload (any field name) or as the raw request body
    POST /predict/batch    several pictures in one multipart upload
    GET  /health           {"status": "ok"}
    GET  /model            architecture, classes (English and Korean), metrics, preprocessing, limits
    GET  /                 the page: upload or draw, see the 28×28 the model saw and the 10 probabilities
    GET  /docs, /redoc     the API's interactive docs, served from this machine (no CDN: they work offline)
    GET  /fonts/hangul.css the page's Korean font: NanumGothic cut down to the class names (see fonts.py)

Bad input never reaches the model and never crashes the server: an empty body (400), a body over
``max_upload_bytes`` (413, refused from its Content-Length before it is read), a picture over ``max_pixels``
or a request over ``max_request_pixels`` (413, refused from the headers before decoding: see limits.py),
something that is not PNG, JPEG, WebP, BMP or GIF by its content, whatever its name (415), or a damaged file
(422) each get a JSON ``{"detail": ...}``, as does a bad query parameter (422, e.g. ``include_input=maybe``)
and anything unexpected (500). In a batch, a bad picture gets ``{"file", "error", "status"}`` in its place
and the others are classified. Hostile clients: a Host header other than this machine's names (400: DNS
rebinding), too many or too large headers (431), a body that takes over ``body_timeout`` to arrive (408), a
request that waits for a worker longer than ``request_seconds`` (503, ``Retry-After``; in a batch, the
pictures not decoded in that time get their own 503 and the others are classified); a client that goes away mid-upload is one line in the log. The OpenAPI document (/openapi.json) describes
every answer: its models are in ``fashion_cnn.serving.schemas``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..data.images import ImageError
from ..version import __version__
from .classifier import ImageClassifier, release_memory, status_of
from .fonts import FONT_ROUTE, page_fonts
from .limits import LARGE_BODY_BYTES, LARGE_REQUEST_PIXELS, LOCAL_HOSTS, MAX_HEADER_BYTES, MAX_HEADERS, Limits
from .schemas import BatchResponse, ErrorResponse, Health, ModelInfo, Prediction

log = logging.getLogger("fashion_cnn.serving")
Part = Literal["gradcam", "feature_maps"]  # what /predict's include= may ask for (explain.PARTS)
_IMAGE_BODY = {
    "multipart/form-data": {
        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
    },
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}
_BATCH_BODY = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            "required": ["files"],
        }
    },
}
# Every endpoint sends its own JSONResponse, so FastAPI neither validates nor re-serialises it: the response
# models (schemas.py) only document the answers, and cost nothing per request. Every error is {"detail": "..."}:
# documenting 422 ourselves also keeps FastAPI's HTTPValidationError (a list) out of the document.
_HOST = "a Host header that is not one of this server's names (DNS rebinding; see `--allowed-host`)"
_COMMON = {
    400: {"model": ErrorResponse, "description": f"Refused: {_HOST}."},
    431: {"model": ErrorResponse, "description": f"More than {MAX_HEADERS} header lines or {MAX_HEADER_BYTES:,} bytes of headers."},
    500: {"model": ErrorResponse, "description": "Something unexpected went wrong (the server log has the details)."},
}


def _upload_errors(limits: Limits, batch: bool) -> dict:
    too_large = [f"a body over {limits.max_upload_bytes:,} bytes", f"a picture over {limits.max_pixels:,} pixels"]
    too_large += [f"pictures that decode to over {limits.max_request_pixels:,} pixels in all"]
    too_large += [f"more than {limits.max_batch} pictures"] if batch else []
    each = " (in a batch, a bad picture gets its own error in its place instead, and the others are classified)" if batch else ""
    return {
        **_COMMON,
        400: {
            "model": ErrorResponse,
            "description": "No picture: an empty body or file, "
            + ("a body that is not a multipart upload, " if batch else "")
            + f"a multipart upload without a file, a malformed multipart body or Content-Length header, or {_HOST}.",
        },
        408: {
            "model": ErrorResponse,
            "description": f"The body did not arrive within {limits.body_timeout:g} s; the connection is closed.",
        },
        413: {"model": ErrorResponse, "description": f"Too large: {', '.join(too_large[:-1])} or {too_large[-1]}."},
        415: {"model": ErrorResponse, "description": f"Not a PNG, JPEG, WebP, BMP or GIF picture (judged by its content){each}."},
        422: {"model": ErrorResponse, "description": f"A damaged or truncated picture{each}, or a bad query parameter."},
        503: {
            "model": ErrorResponse,
            "description": f"Busy: the request waited over {limits.request_seconds:g} s for a worker; try again after `Retry-After` "
            "seconds" + (" (pictures not decoded in that time get their own 503 in their place instead)" if batch else "") + ".",
        },
    }


# The page loads only its own files: no CDN, no inline script; its fonts are the app's own (/fonts).
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; font-src 'self'",
    "X-Content-Type-Options": "nosniff",
}


class BadRequest(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def create_app(
    model: str | ImageClassifier, *, limits: Limits = Limits(), engine: str = "torch", allowed_hosts: Iterable[str] | None = None
) -> FastAPI:
    """Build the app around one model, loaded now and shared by every request.

    Args:
        model: a run directory, a model file (``.safetensors``, or ``.onnx`` with ``engine="onnx"``), or a
            ready ``ImageClassifier``.
        limits: upload size, pixel count, batch size and concurrency limits.
        engine: ``torch`` (the safetensors model) or ``onnx`` (RUN/model.onnx with onnxruntime).
        allowed_hosts: Host header names answered besides this machine's (``LOCAL_HOSTS``); ``"*"``: any.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> client = TestClient(create_app(run_dir))
        >>> answer = client.post("/predict", content=Path("sneaker.jpg").read_bytes()).json()
        >>> answer["label"] in model.meta["classes"], len(answer["probabilities"])
        (True, 10)
    """
    clf = model if isinstance(model, ImageClassifier) else ImageClassifier.load(model, engine=engine, max_pixels=limits.max_pixels)
    clf.warm_up()  # the first request should not pay for torch's first call
    app = FastAPI(
        title="fashion-cnn",
        version=__version__,
        description="Classify pictures of clothes with a Fashion-MNIST CNN. The page at / lets you upload or draw one.",
        docs_url=None,  # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN: see _add_docs
        redoc_url=None,
    )
    app.state.classifier, app.state.limits = clf, limits
    app.state.lanes = None  # made on first use, inside the server's event loop
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes, timeout=limits.body_timeout)
    app.add_middleware(HeaderGuard, allowed_hosts=[*LOCAL_HOSTS, *(allowed_hosts or [])])  # outermost: runs first

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        # A body cut off part-way cannot be skipped to the next request: close the connection.
        headers = {"Connection": "close"} if exc.status == 408 else {"Retry-After": "5"} if exc.status == 503 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(ImageError)
    async def bad_image(request: Request, exc: ImageError):
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect):
        # Nobody is left to answer: one line, no traceback (a flaky network or a closed tab, not our error).
        client = request.client.host if request.client else "a client"
        log.info("%s disconnected during the upload to %s; request dropped", client, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    @app.get(
        "/health",
        summary="Liveness: the model is loaded and answering",
        response_model=Health,
        response_description="The server is up.",
        responses=_COMMON,
    )
    async def health():
        return JSONResponse({"status": "ok"})

    @app.get(
        "/model",
        summary="The model: architecture, classes, metrics, preprocessing and limits",
        response_model=ModelInfo,
        response_description="The served model.",
        responses=_COMMON,
    )
    async def model_info():
        return JSONResponse(
            {
                **clf.info(),
                "limits": {
                    "max_upload_bytes": limits.max_upload_bytes,
                    "max_pixels": limits.max_pixels,
                    "max_request_pixels": limits.max_request_pixels,
                    "max_batch": limits.max_batch,
                },
            }
        )

    @app.post(
        "/predict",
        summary="Classify one picture",
        openapi_extra={"requestBody": {"required": True, "content": _IMAGE_BODY}},
        response_model=Prediction,
        response_description="The most probable class and every class's probability.",
        responses=_upload_errors(limits, batch=False),
        description="Send a PNG, JPEG, WebP, BMP or GIF as a multipart upload (field `file`) or as the raw body. "
        "`include_input=true` adds the 28×28 the model saw, as base64 PNG; `include=gradcam` adds where in it the evidence for "
        "the class lies (Grad-CAM), `include=feature_maps` what the first convolution layer made of it (both: repeat `include`).",
    )
    async def predict(request: Request, include_input: bool = False, include: Annotated[list[Part], Query()] = []):  # noqa: B006
        name, data = await _one_image(request)
        deadline = time.monotonic() + limits.request_seconds
        # The header only (ImageError → 413/415/422): microseconds for a small body, so no thread hop for one.
        pixels = clf.cost(data, name) if len(data) <= 256 * 1024 else await anyio.to_thread.run_sync(clf.cost, data, name)
        _check_budget(limits, pixels, 1)
        return JSONResponse(await _run(app, pixels, clf.classify, data, name, include_input, include, deadline=deadline))

    @app.post(
        "/predict/batch",
        summary="Classify several pictures",
        openapi_extra={"requestBody": {"required": True, "content": _BATCH_BODY}},
        response_model=BatchResponse,
        response_description="One result per picture, in upload order.",
        responses=_upload_errors(limits, batch=True),
        description=f"A multipart upload of up to {limits.max_batch} pictures (any field names; `files` in the docs). "
        "A picture that cannot be used gets `{file, error, status}` in its place; the others are classified.",
    )
    async def predict_batch(request: Request, include_input: bool = False):
        items = await _images(request, limits.max_batch)
        deadline = time.monotonic() + limits.request_seconds
        pixels, checked = await anyio.to_thread.run_sync(_costs, clf, items)
        _check_budget(limits, pixels, len(items))
        results = await _run(app, pixels, clf.classify_many, checked, include_input, deadline, deadline=deadline)
        return JSONResponse({"results": results})

    static = resources.files("fashion_cnn.serving") / "static"

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(static / "index.html"), headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    _add_fonts(app, clf.classes_ko)
    _add_docs(app)
    return app


def _add_fonts(app: FastAPI, names: list[str]) -> None:
    """The page's Hangul font, cut down to the Korean class names (see fonts.py): built now, once per process."""
    fonts = page_fonts(names)

    @app.get(FONT_ROUTE + "/hangul.css", include_in_schema=False)
    async def font_css():
        return Response(fonts.css, media_type="text/css", headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @app.get(FONT_ROUTE + "/{name}", include_in_schema=False)
    async def font_file(name: str):
        if name not in fonts.files:
            return JSONResponse({"detail": f"no font {name} here"}, status_code=404)
        return Response(fonts.files[name], media_type="font/woff", headers={"Cache-Control": "public, max-age=31536000, immutable"})


#: The package that ships Swagger UI's and ReDoc's files (the serve extra installs it), and where the app serves them.
DOCS_PACKAGE, DOCS_ASSETS = "fastapi_offline", "/docs-assets"
# The docs pages have inline scripts and styles (FastAPI's and the UIs'), but nothing in them reaches past this
# machine: ReDoc's "by Redocly" logo (cdn.redoc.ly) is refused by the browser, and ReDoc hides it.
_DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:",
    "X-Content-Type-Options": "nosniff",
}


def _docs_assets() -> Path | None:
    """The folder of Swagger UI's and ReDoc's files inside the installed fastapi-offline, found without importing it."""
    spec = importlib.util.find_spec(DOCS_PACKAGE)
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (Path(root) / "static" / "swagger-ui-bundle.js").is_file():
            return Path(root) / "static"
    return None


def _add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc, in FastAPI's documented way of self-hosting them: every file from this machine.

    Without the fastapi-offline package they fall back to FastAPI's defaults, which load from a CDN; the log says so.
    """
    assets = _docs_assets()
    if assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    else:
        log.warning("/docs and /redoc will need the internet (a CDN): pip install -c constraints.txt fastapi-offline")

    def urls(request: Request) -> tuple[str, dict]:
        """The OpenAPI document's address and the files' for this request (under the app's root path, behind a
        proxy); no files without the package: FastAPI's defaults, the CDN."""
        root = request.scope.get("root_path", "").rstrip("/")
        at = root + DOCS_ASSETS
        files = {
            "js": f"{at}/swagger-ui-bundle.js",
            "css": f"{at}/swagger-ui.css",
            "redoc": f"{at}/redoc.standalone.js",
            "icon": f"{at}/favicon.png",
        }
        return root + app.openapi_url, files if assets else {}

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request):
        openapi, files = urls(request)
        local = {"swagger_js_url": files["js"], "swagger_css_url": files["css"], "swagger_favicon_url": files["icon"]} if files else {}
        # validatorUrl None: Swagger UI would otherwise show a badge from validator.swagger.io (for a non-local address).
        parameters = {"validatorUrl": None, **(app.swagger_ui_parameters or {})}
        page = get_swagger_ui_html(openapi_url=openapi, title=f"{app.title} · API docs", swagger_ui_parameters=parameters, **local)
        page.headers.update(_DOCS_HEADERS if files else {})
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request):
        openapi, files = urls(request)
        local = {"redoc_js_url": files["redoc"], "redoc_favicon_url": files["icon"]} if files else {}
        page = get_redoc_html(openapi_url=openapi, title=f"{app.title} · API docs", with_google_fonts=False, **local)
        page.headers.update(_DOCS_HEADERS if files else {})
        return page


def _validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one line: which parameter, what it got, what to send instead."""
    parts = []
    for error in exc.errors():
        # A repeated parameter's position (("query", "include", 0)) is not part of its name.
        loc = [str(part) for part in error.get("loc", ()) if not isinstance(part, int)] or ["request"]
        where, name = loc[0], ".".join(loc[1:]) or loc[0]  # ("query", "include_input")
        got = repr(error["input"])[:60] if "input" in error else None
        msg = " ".join(str(error.get("msg", "invalid value")).split())
        if error.get("type") == "missing":
            parts.append(f"the {where} parameter {name} is missing")
        elif error.get("type") == "bool_parsing":
            parts.append(f"the {where} parameter {name}={got} is not a boolean; send {name}=true or {name}=false")
        else:
            parts.append(f"the {where} parameter {name}={got} is not valid: {msg[:1].lower() + msg[1:]}")
    return "; ".join(parts) or "the request is not valid"


def _costs(clf: ImageClassifier, items: list[tuple[str, bytes]]) -> tuple[int, list[tuple[str, bytes | ImageError]]]:
    """Each picture's decoding cost from its header: the pixels in all, and the items with each bad one
    (empty, unknown, too large, damaged header) replaced by its error."""
    total, checked = 0, []
    for name, data in items:
        try:
            if not data:
                raise ImageError(f"{name} is empty; attach the picture's bytes")
            total += clf.cost(data, name)
            checked.append((name, data))
        except ImageError as e:
            checked.append((name, e))
    return total, checked


def _check_budget(limits: Limits, pixels: int, count: int) -> None:
    if pixels > limits.max_request_pixels:
        what = "the picture decodes" if count == 1 else f"the {count} pictures decode"
        raise BadRequest(
            413,
            f"{what} to {pixels:,} pixels in all, more than the {limits.max_request_pixels:,} allowed per request; "
            "send fewer or smaller pictures",
        )


async def _run(app: FastAPI, pixels: int, fn, *args, deadline: float | None = None):
    """Decode and predict in a worker thread: the event loop keeps accepting requests meanwhile, and a bounded
    number of them (``Limits.workers``) use the cores at once (Pillow and torch release the GIL). Requests that
    decode over ``LARGE_REQUEST_PIXELS`` take turns in a lane of their own, one at a time, so small requests
    never queue behind them; after one, freed memory goes back to the system. A request still waiting for its
    lane at ``deadline`` (``time.monotonic()``) gets 503."""
    if app.state.lanes is None:
        app.state.lanes = (anyio.CapacityLimiter(app.state.limits.workers), anyio.CapacityLimiter(1))
    small, large = app.state.lanes
    lane = small if pixels <= LARGE_REQUEST_PIXELS else large
    with anyio.move_on_after(max(0.0, deadline - time.monotonic()) if deadline is not None else math.inf) as waiting:
        await lane.acquire()
    if waiting.cancelled_caught:
        raise BadRequest(
            503, "the server is busy decoding other pictures and this request ran out of time waiting; try again in a few seconds"
        )

    def work():
        try:
            return fn(*args)
        finally:
            if lane is large:
                release_memory()

    try:
        return await anyio.to_thread.run_sync(work)  # the lane bounds the threads; run_sync's own limiter is larger
    finally:
        lane.release()


async def _one_image(request: Request) -> tuple[str | None, bytes]:
    if _is_multipart(request):
        items = await _images(request, 1)
        return items[0]
    data = await request.body()
    if not data:
        raise BadRequest(400, "the request body is empty; send a picture as the body or as a multipart upload (field 'file')")
    return None, data


#: Text fields tolerated (and ignored) beside the pictures of a multipart upload.
MAX_TEXT_FIELDS = 16


async def _images(request: Request, most: int) -> list[tuple[str, bytes]]:
    if not _is_multipart(request):
        raise BadRequest(400, "send the pictures as a multipart/form-data upload (e.g. curl -F files=@a.png -F files=@b.jpg)")
    too_many = f"at most {most} picture(s) per request; split the upload"
    try:
        # The parser stops at most + 1 files (each costs a spooled file): over it, the same 413 as at most + 1.
        # Text fields cost little; a few are ignored, more than MAX_TEXT_FIELDS are refused.
        form = await request.form(max_files=most + 1, max_fields=MAX_TEXT_FIELDS)
    except HTTPException as e:
        if str(e.detail).startswith("Too many files"):
            raise BadRequest(413, too_many) from None
        if str(e.detail).startswith("Too many fields"):
            raise BadRequest(400, f"the upload has more than {MAX_TEXT_FIELDS} text fields; send only the picture(s)") from None
        raise
    try:
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not uploads:
            raise BadRequest(400, "the upload holds no file; attach a picture (e.g. curl -F file=@photo.jpg)")
        if len(uploads) > most:
            raise BadRequest(413, too_many)
        items = []
        for i, upload in enumerate(uploads):
            name = upload.filename or f"file {i + 1}"
            data = await upload.read()
            if not data and most == 1:
                raise BadRequest(400, f"{name} is empty; attach the picture's bytes")
            items.append((name, data))  # empty in a batch: that file's own error (see _costs)
        return items
    finally:
        await form.close()


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


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
                await anyio.to_thread.run_sync(release_memory)

    def _too_large(self) -> str:
        return f"the upload is larger than {self.max_bytes:,} bytes; send a smaller picture (or start the server with a larger --max-upload-mb)"
