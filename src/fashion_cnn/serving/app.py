"""The web service: a FastAPI app around one loaded model, with a page to upload or draw a picture.

    fashion-cnn serve runs/NAME                      # http://127.0.0.1:8000/  (API docs: /docs)
    curl -F file=@sneaker.jpg http://127.0.0.1:8000/predict
    curl --data-binary @sneaker.jpg http://127.0.0.1:8000/predict

Endpoints:
    POST /predict          one picture, as a multipart upload (any field name) or as the raw request body
    POST /predict/batch    several pictures in one multipart upload
    GET  /health           {"status": "ok"}
    GET  /model            architecture, classes (English and Korean), metrics, preprocessing, limits
    GET  /metrics          Prometheus metrics: requests by route and status, latencies, predictions by class (metrics.py)
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

import logging
import time
from collections.abc import Iterable
from importlib import resources
from typing import Annotated, Literal

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from ..data.images import ImageError
from ..version import __version__
from .classifier import ImageClassifier, status_of
from .fonts import FONT_ROUTE, page_fonts
from .limits import LOCAL_HOSTS, Limits
from .metrics import ServiceMetrics, add_metrics
from .middleware import BadRequest, BodyLimit, HeaderGuard
from .openapi import BATCH_BODY, COMMON, IMAGE_BODY, add_docs, upload_errors
from .schemas import BatchResponse, Health, ModelInfo, Prediction
from .uploads import check_budget, costs, images, one_image, run_in_lane

log = logging.getLogger("fashion_cnn.serving")
Part = Literal["gradcam", "feature_maps"]  # what /predict's include= may ask for (explain.PARTS)

# The page loads only its own files: no CDN, no inline script; its fonts are the app's own (/fonts).
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; font-src 'self'",
    "X-Content-Type-Options": "nosniff",
}


def create_app(
    model: str | ImageClassifier,
    *,
    limits: Limits = Limits(),
    engine: str = "torch",
    allowed_hosts: Iterable[str] | None = None,
    ood: str = "warn",
) -> FastAPI:
    """Build the app around one model, loaded now and shared by every request.

    Args:
        model: a run directory, a model file (``.safetensors``, or ``.onnx`` with ``engine="onnx"``), or a
            ready ``ImageClassifier``.
        limits: upload size, pixel count, batch size and concurrency limits.
        engine: ``torch`` (the safetensors model) or ``onnx`` (RUN/model.onnx with onnxruntime).
        allowed_hosts: Host header names answered besides this machine's (``LOCAL_HOSTS``); ``"*"``: any.
        ood: a picture the model's detector finds unlike its training images: ``warn`` (answer it, with
            ``in_distribution: false``) or ``reject`` (422).

    Example:
        >>> from pathlib import Path
        >>> from fastapi.testclient import TestClient
        >>> client = TestClient(create_app(run_dir))
        >>> answer = client.post("/predict", content=Path("sneaker.jpg").read_bytes()).json()
        >>> answer["label"] in model.meta["classes"], len(answer["probabilities"])
        (True, 10)
    """
    clf = model if isinstance(model, ImageClassifier) else ImageClassifier.load(model, engine=engine, max_pixels=limits.max_pixels, ood=ood)
    clf.warm_up()  # the first request should not pay for torch's first call
    app = FastAPI(
        title="fashion-cnn",
        version=__version__,
        description="Classify pictures of clothes with a Fashion-MNIST CNN. The page at / lets you upload or draw one.",
        docs_url=None,  # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN: see add_docs
        redoc_url=None,
    )
    app.state.classifier, app.state.limits = clf, limits
    app.state.metrics = ServiceMetrics(clf.classes)
    app.state.lanes = None  # made on first use, inside the server's event loop
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes, timeout=limits.body_timeout)
    app.add_middleware(HeaderGuard, allowed_hosts=[*LOCAL_HOSTS, *(allowed_hosts or [])])
    add_metrics(app, app.state.metrics)  # its middleware outermost: the guards' refusals are counted too

    _add_error_handlers(app)
    _add_info_routes(app, clf, limits)
    _add_predict_routes(app, clf, limits)
    _add_page(app)
    _add_fonts(app, clf.classes_ko)
    add_docs(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as one JSON ``{"detail": ...}``: the client's mistakes with their status, anything else 500."""

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


def _add_info_routes(app: FastAPI, clf: ImageClassifier, limits: Limits) -> None:
    """/health and /model."""

    @app.get(
        "/health",
        summary="Liveness: the model is loaded and answering",
        response_model=Health,
        response_description="The server is up.",
        responses=COMMON,
    )
    async def health():
        return JSONResponse({"status": "ok"})

    @app.get(
        "/model",
        summary="The model: architecture, classes, metrics, preprocessing and limits",
        response_model=ModelInfo,
        response_description="The served model.",
        responses=COMMON,
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


def _add_predict_routes(app: FastAPI, clf: ImageClassifier, limits: Limits) -> None:
    """/predict (one picture) and /predict/batch (several)."""

    @app.post(
        "/predict",
        summary="Classify one picture",
        openapi_extra={"requestBody": {"required": True, "content": IMAGE_BODY}},
        response_model=Prediction,
        response_description="The most probable class and every class's probability.",
        responses=upload_errors(limits, batch=False),
        description="Send a PNG, JPEG, WebP, BMP or GIF as a multipart upload (field `file`) or as the raw body. "
        "`include_input=true` adds the 28×28 the model saw, as base64 PNG; `include=gradcam` adds where in it the evidence for "
        "the class lies (Grad-CAM), `include=feature_maps` what the first convolution layer made of it (both: repeat `include`).",
    )
    async def predict(request: Request, include_input: bool = False, include: Annotated[list[Part], Query()] = []):  # noqa: B006
        name, data = await one_image(request)
        deadline = time.monotonic() + limits.request_seconds
        # The header only (ImageError → 413/415/422): microseconds for a small body, so no thread hop for one.
        pixels = clf.cost(data, name) if len(data) <= 256 * 1024 else await anyio.to_thread.run_sync(clf.cost, data, name)
        check_budget(limits, pixels, 1)
        answer = await run_in_lane(app, pixels, clf.classify, data, name, include_input, include, deadline=deadline)
        app.state.metrics.count_answers("/predict", [answer])
        return JSONResponse(answer)

    @app.post(
        "/predict/batch",
        summary="Classify several pictures",
        openapi_extra={"requestBody": {"required": True, "content": BATCH_BODY}},
        response_model=BatchResponse,
        response_description="One result per picture, in upload order.",
        responses=upload_errors(limits, batch=True),
        description=f"A multipart upload of up to {limits.max_batch} pictures (any field names; `files` in the docs). "
        "A picture that cannot be used gets `{file, error, status}` in its place; the others are classified.",
    )
    async def predict_batch(request: Request, include_input: bool = False):
        items = await images(request, limits.max_batch)
        deadline = time.monotonic() + limits.request_seconds
        pixels, checked = await anyio.to_thread.run_sync(costs, clf, items)
        check_budget(limits, pixels, len(items))
        results = await run_in_lane(app, pixels, clf.classify_many, checked, include_input, deadline, deadline=deadline)
        app.state.metrics.count_answers("/predict/batch", results)
        return JSONResponse({"results": results})


def _add_page(app: FastAPI) -> None:
    """The page at / and its files under /static."""

    static = resources.files("fashion_cnn.serving") / "static"

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(static / "index.html"), headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=str(static)), name="static")


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
