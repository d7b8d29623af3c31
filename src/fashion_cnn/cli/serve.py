"""``fashion-cnn serve``: the model as a web service with a page, on uvicorn.

fashion-cnn serve runs/NAME                          # http://127.0.0.1:8000/ (this machine only)
fashion-cnn serve runs/NAME --host 0.0.0.0 --port 8080 --allowed-host fashion.lan   # reachable from the network
"""

from __future__ import annotations

import math

from ..errors import FashionCNNError
from ..inference.engines import ENGINES
from ..serving.limits import BODY_TIMEOUT, MAX_BATCH, MAX_PIXELS, MAX_REQUEST_PIXELS, MAX_UPLOAD_BYTES, REQUEST_SECONDS, Limits


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a model over HTTP: a JSON API and a page to upload or draw a picture")
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="run the safetensors model with PyTorch, or RUN/model.onnx (or an .onnx file; see 'fashion-cnn export') with onnxruntime (default: onnx for an .onnx file, else torch)",
    )
    p.add_argument("--workers", type=int, default=2, help="requests decoded and classified at the same time (default: 2)")
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=MAX_UPLOAD_BYTES / 2**20,
        help=f"largest request body in MiB (default: {MAX_UPLOAD_BYTES / 2**20:g})",
    )
    p.add_argument(
        "--max-pixels", type=int, default=MAX_PIXELS, help=f"largest picture in pixels, checked before decoding (default: {MAX_PIXELS:,})"
    )
    p.add_argument(
        "--max-request-pixels",
        type=int,
        default=MAX_REQUEST_PIXELS,
        help=f"most pixels decoded for one request, summed over a batch, checked before decoding (default: {MAX_REQUEST_PIXELS:,})",
    )
    p.add_argument("--max-batch", type=int, default=MAX_BATCH, help=f"most pictures per /predict/batch request (default: {MAX_BATCH})")
    p.add_argument(
        "--body-timeout",
        type=float,
        default=BODY_TIMEOUT,
        help=f"seconds a request's headers, then its body, may take to arrive; slower clients are cut off (default: {BODY_TIMEOUT:g})",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=REQUEST_SECONDS,
        help=f"seconds a request may wait for a worker and decode once its body has arrived; then 503 (default: {REQUEST_SECONDS:g})",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name to answer besides this machine's (--host, localhost, 127.0.0.1, ::1); repeatable; '*' for any. "
        "Other names get 400: a guard against DNS rebinding",
    )
    p.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs throughput)")
    p.set_defaults(run=run)


def run(args) -> int:
    import warnings

    import torch
    from PIL import Image

    try:
        from ..serving.app import create_app
        from ..serving.server import bind, serve
    except ImportError as e:
        raise FashionCNNError(f"serving needs {e.name}, which is not installed; pip install 'fashion-cnn[serve]'") from None

    for name, value in (
        ("--port", args.port),
        ("--workers", args.workers),
        ("--max-pixels", args.max_pixels),
        ("--max-request-pixels", args.max_request_pixels),
        ("--max-batch", args.max_batch),
    ):
        if value < (0 if name == "--port" else 1) or (name == "--port" and value > 65535):
            raise FashionCNNError(f"{name} {value} is out of range; see 'fashion-cnn serve --help'")
    for name, value in (
        ("--max-upload-mb", args.max_upload_mb),
        ("--body-timeout", args.body_timeout),
        ("--request-timeout", args.request_timeout),
    ):
        if not (math.isfinite(value) and value > 0):
            raise FashionCNNError(f"{name} must be positive (a finite number of {'MiB' if 'mb' in name else 'seconds'}), got {value:g}")
    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_request_pixels=max(args.max_request_pixels, args.max_pixels),  # one picture at the cap always fits
        max_batch=args.max_batch,
        workers=args.workers,
        body_timeout=args.body_timeout,
        request_seconds=args.request_timeout,
    )
    sock = bind(args.host, args.port)  # before the model loads: a busy port is one line, at once
    # One intra-op thread per request: for a model this small, running requests side by side beats splitting one.
    torch.set_num_threads(1)
    # Pictures are size-checked before decoding (413); Pillow's own bomb warning would only repeat that in the log.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
        hosts = [args.host, *args.allowed_host] if args.host not in ("0.0.0.0", "::") else args.allowed_host
        app = create_app(args.model_or_run, limits=limits, engine=args.engine, allowed_hosts=hosts)
        port = sock.getsockname()[1]  # --port 0: the one the system chose
        where = f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{port}"
        print(
            f"Serving {app.state.classifier.source} ({app.state.classifier.model.engine}) on {where}/  (API docs: {where}/docs; Ctrl+C stops)"
        )
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"Note: listening on {args.host}, so other machines can reach this service; "
                "it answers only to the names given with --allowed-host (and this machine's)."
            )
        serve(app, sock, header_timeout=args.body_timeout, access_log=args.access_log)
    finally:
        sock.close()
    return 0
