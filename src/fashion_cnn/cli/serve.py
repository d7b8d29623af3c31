"""``fashion-cnn serve``: the model as a web service with a page, on uvicorn.

fashion-cnn serve runs/NAME                          # http://127.0.0.1:8000/ (this machine only)
fashion-cnn serve runs/NAME --host 0.0.0.0 --port 8080 --allowed-host fashion.lan   # reachable from the network

The limit options (--workers, --max-upload-mb, ...) are made from ``Limits``' fields (flag, help, unit): a limit is
declared once, in ``fashion_cnn.serving.limits``, which also checks the values.
"""

from __future__ import annotations

from dataclasses import fields

from ..errors import FashionCNNError
from ..inference.engines import ENGINES
from ..inference.ood import OOD_ACTIONS
from ..serving.limits import Limits, flag_default, flag_type, option_name


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
    for f in fields(Limits):
        default = flag_default(f)
        shown = f"{default:g}" if flag_type(f) is float else f"{default:,}"
        p.add_argument(f.metadata["flag"], type=flag_type(f), default=default, help=f"{f.metadata['help']} (default: {shown})")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name to answer besides this machine's (--host, localhost, 127.0.0.1, ::1); repeatable; '*' for any. "
        "Other names get 400: a guard against DNS rebinding",
    )
    p.add_argument(
        "--ood",
        choices=OOD_ACTIONS,
        default="warn",
        help="a picture that does not look like the training images (the model's not-clothing score over its threshold): "
        "warn (answer with in_distribution false) or reject (422) (default: warn)",
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

    if not 0 <= args.port <= 65535:
        raise FashionCNNError(f"--port {args.port} is out of range; see 'fashion-cnn serve --help'")
    limits = Limits.from_flags(**{option_name(f): getattr(args, option_name(f)) for f in fields(Limits)})
    sock = bind(args.host, args.port)  # before the model loads: a busy port is one line, at once
    # One intra-op thread per request: for a model this small, running requests side by side beats splitting one.
    torch.set_num_threads(1)
    # Pictures are size-checked before decoding (413); Pillow's own bomb warning would only repeat that in the log.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
        hosts = [args.host, *args.allowed_host] if args.host not in ("0.0.0.0", "::") else args.allowed_host
        app = create_app(args.model_or_run, limits=limits, engine=args.engine, allowed_hosts=hosts, ood=args.ood)
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
