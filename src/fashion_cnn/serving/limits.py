"""The service's limits on what one request may cost; the command line's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.images import MAX_PIXELS

#: The largest request body accepted: a phone photo is 2–8 MB.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: The most pictures in one ``/predict/batch`` request.
MAX_BATCH = 64


@dataclass(frozen=True)
class Limits:
    """Args:
    max_upload_bytes: larger request bodies get 413, from their Content-Length before they are read.
    max_pixels: larger pictures get 413, from their header before they are decoded.
    max_batch: the most pictures in one ``/predict/batch`` request.
    workers: requests decoded and classified at the same time (the rest wait their turn).
    """

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    max_batch: int = MAX_BATCH
    workers: int = 2
