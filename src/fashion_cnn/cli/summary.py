"""``fashion-cnn summary``: Keras' layer table for an architecture or a saved model."""

from __future__ import annotations

from ..models.registry import model_names
from ..models.summary import layer_table, summary
from .common import add_json_arg, add_model_args, model_from_args, print_json


def register(sub) -> None:
    p = sub.add_parser("summary", help="print the layer table (output shapes, parameter counts)")
    add_model_args(p)
    p.add_argument("--list", action="store_true", help="list the registered architectures and exit")
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.list:
        print("\n".join(model_names()))
        return 0
    model = model_from_args(args)
    if args.json:
        rows = layer_table(model)
        print_json(
            {
                "model": model.arch["name"],
                "layers": [{**r.__dict__, "input_shape": list(r.input_shape), "output_shape": list(r.output_shape)} for r in rows],
                "total_params": sum(r.params for r in rows),
                "trainable_params": sum(r.trainable for r in rows),
            }
        )
    else:
        summary(model)
    return 0
