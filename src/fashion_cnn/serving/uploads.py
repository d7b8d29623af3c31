"""A request's pictures: one from a raw body or a multipart upload, several from a multipart upload, with the
limits on files and text fields; each picture's decoding cost from its header, the request's pixel budget, and
the lanes that decode and classify (small requests never wait behind large ones)."""

from __future__ import annotations

import math
import time

import anyio
from fastapi import FastAPI, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from .. import runtime
from ..data.images import ImageError
from .classifier import ImageClassifier
from .limits import LARGE_REQUEST_PIXELS, Limits
from .middleware import BadRequest


async def one_image(request: Request) -> tuple[str | None, bytes]:
    if is_multipart(request):
        items = await images(request, 1)
        return items[0]
    data = await request.body()
    if not data:
        raise BadRequest(400, "the request body is empty; send a picture as the body or as a multipart upload (field 'file')")
    return None, data


#: Text fields tolerated (and ignored) beside the pictures of a multipart upload.
MAX_TEXT_FIELDS = 16


async def images(request: Request, most: int) -> list[tuple[str, bytes]]:
    if not is_multipart(request):
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
            items.append((name, data))  # empty in a batch: that file's own error (see costs)
        return items
    finally:
        await form.close()


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


def costs(clf: ImageClassifier, items: list[tuple[str, bytes]]) -> tuple[int, list[tuple[str, bytes | ImageError]]]:
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


def check_budget(limits: Limits, pixels: int, count: int) -> None:
    if pixels > limits.max_request_pixels:
        what = "the picture decodes" if count == 1 else f"the {count} pictures decode"
        raise BadRequest(
            413,
            f"{what} to {pixels:,} pixels in all, more than the {limits.max_request_pixels:,} allowed per request; "
            "send fewer or smaller pictures",
        )


async def run_in_lane(app: FastAPI, pixels: int, fn, *args, deadline: float | None = None):
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
                runtime.release_memory()

    try:
        return await anyio.to_thread.run_sync(work)  # the lane bounds the threads; run_sync's own limiter is larger
    finally:
        lane.release()
