"""The service's limits on what one request may cost; the command line's defaults.

Decoding is the costly part, and it costs by the pixel, not by the byte: a 6000×6000 RGBA PNG of one colour is
150 KB to send and 36 M pixels to decode (2.0 s of one core here, AMD EPYC, Pillow 13; about 55 ns a pixel,
with ~1 GB of memory at its peak). So the service counts pixels, from each picture's header before decoding:

* ``max_pixels`` per picture, 16 M by default (a 16-megapixel photo, a 4K screenshot at twice its size; 0.9 s
  and ~400 MB to decode at worst). ``fashion-cnn predict`` on your own files keeps the larger
  ``fashion_cnn.data.images.MAX_PIXELS``.
* ``max_request_pixels`` over a whole request (a batch's sum), 32 M: at most about 2 s of one core per request,
  however it is split. A JPEG counts at the scale it is decoded at (1/2 to 1/8 a side for a large photo).
* Requests over ``LARGE_REQUEST_PIXELS`` decode in their own lane of one worker, so a queue of costly requests
  never holds up small ones; after one, the memory it used is handed back to the system (``malloc_trim``), as
  after any request whose body was over ``LARGE_BODY_BYTES`` (even one refused: parsing it cost memory too).
* ``request_seconds`` per request, 10 s, from its body's arrival to its answer: waiting for a worker and
  decoding. A request still waiting for its lane then gets 503 (with ``Retry-After``); in a batch, pictures not
  yet decoded then get their own 503 error and those decoded are classified.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The largest request body accepted: a phone photo is 2–8 MB.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: The most pictures in one ``/predict/batch`` request.
MAX_BATCH = 64
#: The most pixels in one picture (its header says how many, before decoding): see the module's doc.
MAX_PIXELS = 16_000_000
#: The most pixels decoded for one request, summed over a batch.
MAX_REQUEST_PIXELS = 32_000_000
#: Requests that decode more pixels than this (2000×2000; ~0.2 s) wait in the large lane.
LARGE_REQUEST_PIXELS = 4_000_000
#: Bodies over this (1 MB) hand their memory back to the system once answered.
LARGE_BODY_BYTES = 1024 * 1024
#: Seconds a request may spend waiting for a worker and decoding, once its body has arrived: see the module's doc.
REQUEST_SECONDS = 10.0
#: Seconds a request's body may take to arrive, all of it (10 MB at 1.4 Mbit/s): slow clients are cut off (408).
#: A request's headers get the same time (the connection is closed).
BODY_TIMEOUT = 60.0
#: The most header lines, and header bytes, in one request: more gets 431 (uvicorn's h11 parser refuses a
#: request head over MAX_HEADER_BYTES before it is all read).
MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024
#: The Host headers the service answers to by default: this machine's names, and the name Starlette's
#: TestClient sends (no DNS answer can point a browser's page at it). Others get 400: DNS rebinding.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "testserver")


@dataclass(frozen=True)
class Limits:
    """Args:
    max_upload_bytes: larger request bodies get 413, from their Content-Length before they are read.
    max_pixels: larger pictures get 413, from their header before they are decoded.
    max_request_pixels: a request whose pictures decode to more pixels in all gets 413, before any is decoded.
    max_batch: the most pictures in one ``/predict/batch`` request.
    workers: small requests decoded and classified at the same time (the rest wait their turn); large ones
        (over ``LARGE_REQUEST_PIXELS``) take turns in one more worker of their own.
    body_timeout: seconds the whole body may take to arrive; then 408 and the connection is closed.
    request_seconds: seconds a request may then spend waiting for a worker and decoding: a request still
        waiting gets 503; a batch's pictures not decoded by then get their own 503 error.
    """

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    max_request_pixels: int = MAX_REQUEST_PIXELS
    max_batch: int = MAX_BATCH
    workers: int = 2
    body_timeout: float = BODY_TIMEOUT
    request_seconds: float = REQUEST_SECONDS
