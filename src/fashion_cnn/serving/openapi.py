"""What the OpenAPI document says of the service beyond its models (schemas.py): the request bodies, every
error answer each endpoint can give, and /docs and /redoc served from this machine (no CDN: they work offline)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

from .limits import MAX_HEADER_BYTES, MAX_HEADERS, Limits
from .schemas import ErrorResponse

log = logging.getLogger("fashion_cnn.serving")
IMAGE_BODY = {
    "multipart/form-data": {
        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
    },
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}
BATCH_BODY = {
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
COMMON = {
    400: {"model": ErrorResponse, "description": f"Refused: {_HOST}."},
    431: {"model": ErrorResponse, "description": f"More than {MAX_HEADERS} header lines or {MAX_HEADER_BYTES:,} bytes of headers."},
    500: {"model": ErrorResponse, "description": "Something unexpected went wrong (the server log has the details)."},
}


def upload_errors(limits: Limits, batch: bool) -> dict:
    too_large = [f"a body over {limits.max_upload_bytes:,} bytes", f"a picture over {limits.max_pixels:,} pixels"]
    too_large += [f"pictures that decode to over {limits.max_request_pixels:,} pixels in all"]
    too_large += [f"more than {limits.max_batch} pictures"] if batch else []
    each = " (in a batch, a bad picture gets its own error in its place instead, and the others are classified)" if batch else ""
    return {
        **COMMON,
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


def add_docs(app: FastAPI) -> None:
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
