"""Every setting of a training run, declared once: name, default, help and choices.

    fashion-cnn train --epochs 30 --lr 3e-4        # the flags are generated from these fields
    fc.train(fc.TrainConfig(epochs=30, lr=3e-4))   # the same run from Python

Each field of ``TrainConfig`` carries its help text (and choices) as field metadata; ``fashion-cnn train``
builds its flags from them, ``TrainConfig``'s docstring lists them, and ``--resume`` names a refused
change by ``flag_of``. Checks belong to the code that uses a setting (the loop checks the batch size,
the data package the validation fraction...); ``TrainConfig.validate`` asks each owner in turn.
"""

from __future__ import annotations

import os
import typing
from dataclasses import MISSING, dataclass, field, fields

from ..data.registry import get_spec
from ..data.types import check_limit, check_seed, check_val_fraction
from ..devices import PRECISIONS, check_precision, check_threads
from ..kernels.backend import MODES as KERNEL_MODES
from ..kernels.backend import check_mode as check_kernels
from ..models.registry import check_model_name
from ..rundir import check_run_name
from ..training.augment import check_augment
from ..training.callbacks import check_monitor, check_patience
from ..training.class_weights import check_class_weight
from ..training.loggers import check_log
from ..training.loop import check_adam, check_ema, check_hyperparameters, check_label_smoothing
from ..training.optimizers import OPTIMIZERS, check_optimizer
from ..training.schedules import SCHEDULES, check_schedule
from .recipes import check_recipe, recipe_values


def setting(
    default,
    help: str,
    *,
    choices: tuple | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    aliases: tuple[str, ...] = (),
):
    """A ``TrainConfig`` field with what the command line shows for it.

    Args:
        default: the tutorial's value.
        help: one line for ``--help`` and the docstring; the default is appended where it is not None.
        choices: the allowed values (the same constant the owner's check uses).
        flag: the option's name when it is not ``--field-name`` (``--no-restore-best``).
        metavar: how ``--help`` names the value.
        aliases: other names of the option (``--log-to``: torchrun's own parser refuses ``--log`` anywhere).
    """
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag, "metavar": metavar, "aliases": aliases})


@dataclass
class TrainConfig:
    dataset: str = setting("fashion-mnist", "fashion-mnist, mnist, kmnist, or folder:PATH for your own images in PATH/train/<class>/")
    data_dir: str | None = setting(
        None, "folder with the four IDX .gz files (default: $FASHION_CNN_DATA, then the cache, then a checked download)", metavar="DIR"
    )
    model: str = setting("tutorial-cnn", "architecture name (see 'fashion-cnn summary --list')")
    epochs: int = setting(20, "the most epochs (early stopping may end sooner)")
    batch_size: int = setting(32, "images per step (the global batch under torchrun)")
    lr: float = setting(1e-3, "the learning rate; with --schedule onecycle or cosine the peak rate")
    schedule: str = setting(
        "constant",
        "learning-rate schedule: the tutorial's constant rate, onecycle (warm up over 30%% of the steps, then anneal), "
        "or cosine (warm up over --warmup-epochs, then a half cosine to 0)",
        choices=SCHEDULES,
    )
    warmup_epochs: float = setting(0.0, "with --schedule cosine: epochs of linear warm-up to --lr")
    optimizer: str = setting(
        "adam", "adam (the tutorial's, Keras' settings), adamw (decoupled weight decay) or sgd (Nesterov momentum)", choices=OPTIMIZERS
    )
    weight_decay: float = setting(0.0, "weight decay for adamw or sgd (5e-4 is usual)")
    momentum: float = setting(0.9, "sgd's momentum (Nesterov)")
    adam_epsilon: float = setting(1e-7, "Adam's epsilon (Keras' default)")
    label_smoothing: float = setting(0.0, "share of each target spread over all classes (0.1 is usual)")
    class_weight: str | None = setting(
        None,
        "weight each class in the training loss: balanced (scikit-learn's, from the training split's counts) or a JSON "
        "file mapping every class name or index to a weight",
        metavar="balanced|FILE",
    )
    balanced_sampling: bool = setting(
        False, "draw each epoch's training images with replacement, every class about equally often (instead of shuffling them)"
    )
    shift: int = setting(0, "augmentation: move each training picture by up to N pixels each way (random crop after padding)")
    flip: bool = setting(False, "augmentation: mirror half the training pictures left-right")
    erase: float = setting(0.0, "augmentation: probability of blanking a random rectangle of a training picture (random erasing)")
    ema: float = setting(0.0, "keep an exponential moving average of the weights with this decay per step (e.g. 0.999), and use it")
    tta: bool = setting(
        False, "final validation and test accuracy with test-time flips (each picture's and its mirror's probabilities averaged)"
    )
    recipe: str | None = setting(
        None, "start from a named recipe's values (see experiment/recipes.py; flags override them)", metavar="NAME"
    )
    val_fraction: float = setting(0.2, "share of the training set held out for validation (0.2: 48,000 / 12,000)")
    split_seed: int = setting(42, "random_state of the train/validation split")
    seed: int = setting(0, "seed for initialisation, shuffling and dropout")
    patience: int = setting(2, "early-stopping patience in epochs; the best model by --monitor is kept")
    monitor: str = setting("val_loss", "the metric for checkpointing and early stopping")
    restore_best_weights: bool = setting(
        True, "keep the last epoch's weights instead of restoring the best epoch's", flag="--no-restore-best"
    )
    calibrate: bool = setting(
        True,
        "skip what follows training: the temperature that calibrates the probabilities and the not-clothing detector "
        "(both fitted on the training and validation splits; 'fashion-cnn calibrate RUN' fits them later)",
        flag="--no-calibrate",
    )
    limit: int | None = setting(None, "train on only the first N training images (quick trials; default: all)", metavar="N")
    device: str = setting("auto", "auto, cpu, cuda (or cuda:N) or mps")
    precision: str = setting(
        "auto",
        "auto: bf16 autocast where the hardware computes bf16 natively, else fp32; weights, Adam and evaluation stay fp32",
        choices=PRECISIONS,
    )
    kernels: str | None = setting(
        None,
        "the CPU kernels for the conv blocks: auto (build them, else PyTorch's operators, saying why), on (refuse to run "
        "without them) or off (default: $FASHION_CNN_KERNELS, else auto)",
        choices=KERNEL_MODES,
    )
    threads: int | None = setting(None, "CPU threads (default: this process's share of the cores)", metavar="N")
    runs_dir: str = setting("runs", "parent folder of run directories")
    name: str | None = setting(None, "the run directory's name (default: MODEL-DATE-TIME)")
    log: str | None = setting(
        None,
        "also send the run (settings, every epoch's metrics, final metrics, pictures; to MLflow the model file) to "
        "tensorboard, mlflow or both: --log tensorboard,mlflow (see docs/logging.md); under torchrun spell it --log-to",
        metavar="NAMES",
        # torchrun parses every option of its command line, the script's too, and finds --log ambiguous (--log-dir, --logs-specs).
        aliases=("--log-to",),
    )
    mlflow_uri: str | None = setting(
        None, "with --log mlflow: the tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///RUNS_DIR/mlflow.db)", metavar="URI"
    )

    def __post_init__(self):
        # Folders may be given as Path objects from Python; config.json records them as text.
        for name in ("data_dir", "runs_dir"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        if isinstance(self.log, (list, tuple)):  # log=["tensorboard", "mlflow"] from Python
            self.log = ",".join(self.log)

    @classmethod
    def from_recipe(cls, recipe: str, /, **overrides) -> TrainConfig:
        """The settings of ``recipe`` (see ``fashion_cnn.experiment.recipes``), with ``overrides`` over them.

        Example:
            >>> c = TrainConfig.from_recipe("fast", epochs=4)
            >>> c.recipe, c.schedule, c.epochs
            ('fast', 'onecycle', 4)
        """
        return cls(**{**recipe_values(recipe), **overrides})

    def validate(self) -> None:
        """Check every setting, each by the code that owns it, before any data is read or file written."""
        check_hyperparameters(self.epochs, self.batch_size, self.lr)
        get_spec(self.dataset)
        check_model_name(self.model)
        check_adam(self.lr, self.adam_epsilon)
        check_precision(self.precision)
        check_schedule(self.schedule, self.warmup_epochs, self.epochs)
        check_optimizer(self.optimizer, self.weight_decay, self.momentum)
        check_label_smoothing(self.label_smoothing)
        check_class_weight(self.class_weight, self.balanced_sampling)
        check_augment(self.shift, self.erase)
        check_ema(self.ema)
        if self.recipe is not None:
            check_recipe(self.recipe)
        check_patience(self.patience)
        check_limit(self.limit)
        check_val_fraction(self.val_fraction)
        check_seed(self.split_seed, "--split-seed")
        check_seed(self.seed, "--seed")
        check_monitor(self.monitor)
        check_threads(self.threads)
        check_kernels(self.kernels)
        check_run_name(self.name)
        check_log(self.log, self.mlflow_uri)


def flag_of(name: str) -> str:
    """The command-line option of the ``TrainConfig`` field ``name`` (``batch_size`` → ``--batch-size``)."""
    meta = next(f.metadata for f in fields(TrainConfig) if f.name == name)
    return meta["flag"] or "--" + name.replace("_", "-")


def value_type(name: str) -> type:
    """The field's type without ``None`` (``int | None`` → ``int``): what its flag parses."""
    hint = typing.get_type_hints(TrainConfig)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _docstring() -> str:
    lines = ["Every setting of a training run; the defaults are the tutorial's.", "", "Args:"]
    for f in fields(TrainConfig):
        default = "" if f.default is None or f.default is MISSING else f" (default: {f.default!r})"
        lines.append(f"    {f.name}: {f.metadata['help'].replace('%%', '%')}{default}.")
    lines += ["", "Example:", "    >>> TrainConfig(epochs=30).batch_size", "    32"]
    return "\n".join(lines)


TrainConfig.__doc__ = _docstring()
