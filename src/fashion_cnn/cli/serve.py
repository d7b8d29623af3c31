"""``fashion-cnn serve``: the model as a web service with a page, on uvicorn.

fashion-cnn serve runs/NAME                          # http://127.0.0.1:8000/ (this machine only)
fashion-cnn serve runs/NAME --host 0.0.0.0 --port 8080   # reachable from the network: you chose it
"""

from __future__ import annotations

from ..data.images import MAX_PIXELS
from ..errors import FashionCNNError
from ..inference.engines import ENGINES
from ..serving.limits import MAX_BATCH, MAX_UPLOAD_BYTES, Limits


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
    p.add_argument("--max-batch", type=int, default=MAX_BATCH, help=f"most pictures per /predict/batch request (default: {MAX_BATCH})")
    p.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs throughput)")
    p.set_defaults(run=run)


def run(args) -> int:
    import warnings

    import torch
    from PIL import Image

    try:
        import uvicorn

        from ..serving.app import create_app
    except ImportError as e:
        raise FashionCNNError(f"serving needs {e.name}, which is not installed; pip install 'fashion-cnn[serve]'") from None

    for name, value in (
        ("--port", args.port),
        ("--workers", args.workers),
        ("--max-pixels", args.max_pixels),
        ("--max-batch", args.max_batch),
    ):
        if value < (0 if name == "--port" else 1) or (name == "--port" and value > 65535):
            raise FashionCNNError(f"{name} {value} is out of range; see 'fashion-cnn serve --help'")
    if not args.max_upload_mb > 0:
        raise FashionCNNError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels, max_batch=args.max_batch, workers=args.workers
    )
    # One intra-op thread per request: for a model this small, running requests side by side beats splitting one.
    torch.set_num_threads(1)
    # Pictures are size-checked before decoding (413); Pillow's own bomb warning would only repeat that in the log.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    app = create_app(args.model_or_run, limits=limits, engine=args.engine)
    where = f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{args.port}"
    print(
        f"Serving {app.state.classifier.source} ({app.state.classifier.model.engine}) on {where}/  (API docs: {where}/docs; Ctrl+C stops)"
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"Note: listening on {args.host}, so other machines can reach this service.")
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="info", timeout_keep_alive=5)
    return 0
