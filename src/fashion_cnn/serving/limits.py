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

import math
from dataclasses import Field, dataclass, field, fields

from ..errors import FashionCNNError

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


def limit(default, flag: str, help: str, *, unit: int = 1, unit_name: str = ""):
    """A ``Limits`` field with its option of ``fashion-cnn serve``, which cli/serve.py builds from it.

    Args:
        default: the limit, in the field's own unit (bytes, pixels, seconds, a count).
        flag: the option's name; its value is ``option_name`` in the parsed arguments.
        help: one line for ``--help``; the default is appended, as the flag counts it.
        unit: how many of the field's units one of the flag's is (``--max-upload-mb``: 2**20 bytes).
        unit_name: what the flag counts when it takes any positive number (``MiB``, ``seconds``); empty for a
            whole count from 1.
    """
    return field(default=default, metadata={"flag": flag, "help": help, "unit": unit, "unit_name": unit_name})


def option_name(f: Field) -> str:
    """The name argparse gives the field's option (``--max-upload-mb`` → ``max_upload_mb``): the flag's, not the
    field's, since it counts in the flag's unit."""
    return f.metadata["flag"].removeprefix("--").replace("-", "_")


def flag_type(f: Field) -> type:
    """What the field's option parses: a number of MiB or seconds (``float``), else a whole count (``int``)."""
    return float if f.metadata["unit_name"] else int


def flag_default(f: Field) -> int | float:
    """The field's default as its option counts it (``--max-upload-mb``: 10 for 10 MiB)."""
    return f.default / f.metadata["unit"] if f.metadata["unit"] != 1 else f.default


@dataclass(frozen=True)
class Limits:
    """Args:
    workers: small requests decoded and classified at the same time (the rest wait their turn); large ones
        (over ``LARGE_REQUEST_PIXELS``) take turns in one more worker of their own.
    max_upload_bytes: larger request bodies get 413, from their Content-Length before they are read.
    max_pixels: larger pictures get 413, from their header before they are decoded.
    max_request_pixels: a request whose pictures decode to more pixels in all gets 413, before any is decoded.
    max_batch: the most pictures in one ``/predict/batch`` request.
    body_timeout: seconds the whole body may take to arrive; then 408 and the connection is closed.
    request_seconds: seconds a request may then spend waiting for a worker and decoding: a request still
        waiting gets 503; a batch's pictures not decoded by then get their own 503 error.

    Each field is declared once, with its option of ``fashion-cnn serve`` (``limit``); ``from_flags`` checks
    the options' values and makes the limits from them.
    """

    workers: int = limit(2, "--workers", "requests decoded and classified at the same time")
    max_upload_bytes: int = limit(MAX_UPLOAD_BYTES, "--max-upload-mb", "largest request body in MiB", unit=2**20, unit_name="MiB")
    max_pixels: int = limit(MAX_PIXELS, "--max-pixels", "largest picture in pixels, checked before decoding")
    max_request_pixels: int = limit(
        MAX_REQUEST_PIXELS, "--max-request-pixels", "most pixels decoded for one request, summed over a batch, checked before decoding"
    )
    max_batch: int = limit(MAX_BATCH, "--max-batch", "most pictures per /predict/batch request")
    body_timeout: float = limit(
        BODY_TIMEOUT,
        "--body-timeout",
        "seconds a request's headers, then its body, may take to arrive; slower clients are cut off",
        unit_name="seconds",
    )
    request_seconds: float = limit(
        REQUEST_SECONDS,
        "--request-timeout",
        "seconds a request may wait for a worker and decode once its body has arrived; then 503",
        unit_name="seconds",
    )

    @classmethod
    def from_flags(cls, **options: float) -> Limits:
        """The limits that ``fashion-cnn serve``'s options ask for, by ``option_name`` and in each flag's unit
        (an option not given keeps its default). A value out of range is refused with one line naming its flag;
        ``max_request_pixels`` is raised to ``max_pixels`` if below it, so one picture at the cap always fits.

        Example:
            >>> limits = Limits.from_flags(max_upload_mb=2, request_timeout=2.5)
            >>> limits.max_upload_bytes, limits.request_seconds, limits.workers
            (2097152, 2.5, 2)
        """
        unknown = set(options) - {option_name(f) for f in fields(cls)}
        if unknown:
            raise TypeError(f"Limits.from_flags() got unknown options {sorted(unknown)}; pass them by their flag's name (max_upload_mb)")
        values = {}
        # The whole counts first, then the MiB and seconds: with several bad values, the one serve always named.
        for f in sorted(fields(cls), key=lambda f: bool(f.metadata["unit_name"])):
            meta, value = f.metadata, options.get(option_name(f), flag_default(f))
            if meta["unit_name"]:
                if not (math.isfinite(value) and value > 0):
                    raise FashionCNNError(f"{meta['flag']} must be positive (a finite number of {meta['unit_name']}), got {value:g}")
                value = int(value * meta["unit"]) if meta["unit"] != 1 else value
            elif value < 1:
                raise FashionCNNError(f"{meta['flag']} {value} is out of range; see 'fashion-cnn serve --help'")
            values[f.name] = value
        values["max_request_pixels"] = max(values["max_request_pixels"], values["max_pixels"])
        return cls(**values)
