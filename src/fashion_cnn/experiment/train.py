"""The tutorial as one function: load, split, build, fit with checkpoint + early stopping, evaluate, draw.

    fashion-cnn train --data-dir ../shared/data/fashion-mnist                      # the CLI face
    python -c "import fashion_cnn as fc; fc.train(fc.TrainConfig(data_dir='...'))"  # the API face
    fashion-cnn train --resume runs/NAME                                           # continue after a crash

``train`` reads a ``TrainConfig``, writes a run directory (see ``fashion_cnn.rundir``) and returns a
``RunResult``; ``resume`` continues one.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from .. import distributed
from ..data.fetch import local_folder
from ..data.loading import load_dataset
from ..data.sampling import class_counts
from ..data.types import Dataset, LabeledImages, train_val_split
from ..devices import resolve_device, resolve_precision, set_threads
from ..environment import cpu_name
from ..errors import FashionCNNError
from ..files import remove_temporaries
from ..inference.calibration import calibrate
from ..inference.ood import fit_detector
from ..inference.predict import evaluate, evaluate_and_predict
from ..inspection.run_outputs import write_run_pictures
from ..kernels.backend import first_block_runs, use_kernels, winograd_blocks
from ..models.files import save_model
from ..models.metadata import dataset_meta
from ..models.registry import build_model
from ..models.summary import summary
from ..rundir import CONFIG, METRICS, RunDir
from ..training.augment import Augment
from ..training.callbacks import EarlyStopping, ModelCheckpoint, RunWriter
from ..training.checkpoint import ResumeState, completed_epochs
from ..training.class_weights import BALANCED, resolve_class_weights, weights_by_name
from ..training.guards import NonFiniteLoss
from ..training.loggers import RunLoggers
from ..training.loop import fit
from ..training.optimizers import make_optimizer
from ..training.schedules import make_schedule, steps_per_epoch
from ..training.trainer import History
from .config import TrainConfig
from .resume import Interrupted, interrupted_message, resumed_config, sigterm_as_interrupt


@dataclass
class RunContext:
    """What one ``train`` call works with once its data, model and run directory exist: the helpers below take
    this instead of a dozen arguments each."""

    config: TrainConfig
    run: RunDir
    model: torch.nn.Module
    train_set: LabeledImages
    val_set: LabeledImages
    test_set: LabeledImages
    meta: dict
    verbose: bool
    resumed: bool
    loggers: RunLoggers  # --log: TensorBoard, MLflow (rank 0 only)
    class_weights: np.ndarray | None = None  # the training loss's weight of each class (--class-weight), or None


@dataclass
class Trained:
    """What ``_fit`` hands on: the history, the early-stopping callback (its best epoch) and the training time."""

    history: History
    early: EarlyStopping
    seconds: float


@dataclass
class RunResult:
    """What ``train`` returns: the run directory, the per-epoch history and the final metrics."""

    run_dir: Path
    history: History
    metrics: dict = field(default_factory=dict)


def train(config: TrainConfig, verbose: bool = True, *, resume_from: str | Path | None = None) -> RunResult:
    """Run the whole tutorial and write a run directory.

    ``resume_from`` continues that run directory from its ``state.safetensors``; use ``resume`` rather
    than passing it yourself, as ``resume`` also checks that ``config`` is the run's own.

    Example:
        >>> result = train(TrainConfig(data_dir=toy_data, epochs=1, runs_dir=tmp, name="demo"), verbose=False)
        >>> result.run_dir.name, len(result.history), sorted(result.metrics)[:2]
        ('demo', 1, ['best_epoch', 'calibration'])
    """
    config.validate()
    device = resolve_device(config.device)  # also refuses an unknown or absent device before any work
    ddp, device = distributed.setup(device)  # one process unless launched by torchrun
    verbose = verbose and ddp.is_main
    set_threads(config.threads)
    data = load_dataset(config.dataset, config.data_dir)
    train_set, val_set = train_and_val(data, config)
    class_weights = resolve_class_weights(config.class_weight, train_set.labels, data.classes)
    torch.manual_seed(config.seed)
    model = build_model(config.model, num_classes=len(data.classes), image_size=data.train.images.shape[1]).to(device)
    precision = resolve_precision(config.precision, device)
    kernels = use_kernels(model, config.kernels) if device.type == "cpu" else None  # built here, before the run starts
    run = None
    with contextlib.ExitStack() as stack:
        if ddp.is_main:
            run = RunDir.create(config.runs_dir, config.name, config.model) if resume_from is None else RunDir(resume_from)
            try:  # a new run that cannot even record its settings (a full disk) leaves no folder behind
                stack.enter_context(run.lock())  # a second train --resume of this run is refused while this one writes it
                if resume_from is not None:
                    remove_temporaries(run.path)  # what a killed write left behind; the files it was replacing are intact
                block = first_block_runs(model, kernels) if kernels else None  # the fused kernel, or why not
                wino = winograd_blocks(model) if kernels and precision == "fp32" else []
                if verbose:  # first, what this run computes on: the figures it prints depend on all of it
                    print(
                        f"Training {config.model} on {len(train_set):,} images, validating on {len(val_set):,}: "
                        f"{_where(device, precision, config.precision, ddp.world_size, block, wino)}; run directory {run}"
                    )
                    if class_weights is not None or config.balanced_sampling:
                        print(_balance_line(config, data.classes, class_weights))
                if resume_from is not None:
                    _check_same_weights(run, class_weights, data.classes)
                # The data folder as an absolute path (None: the cache), so later commands find it from anywhere.
                data_dir = local_folder(config.data_dir)
                run.write_config(
                    {
                        **asdict(config),
                        "data_dir": str(data_dir) if data_dir else None,
                        **_balance_record(config, train_set, data.classes, class_weights),
                        "device": str(device),
                        "cpu": cpu_name(),  # for 'fashion-cnn runs' while it trains (environment.json comes at the end)
                        "threads": torch.get_num_threads(),
                        "processes": ddp.world_size,
                        "precision_used": precision,
                        "first_block": block,
                        "winograd_blocks": wino,
                    }
                )
                run.write_summary(summary(model, print_fn=print if verbose else (lambda s: None)) + "\n")
            except BaseException:
                if resume_from is None:
                    shutil.rmtree(run.path, ignore_errors=True)
                raise
        run = RunDir(distributed.broadcast(run.path if ddp.is_main else None))
        meta = dataset_meta(data, data.train.images.shape[1:], config.val_fraction, config.split_seed)
        loggers = RunLoggers(config.log, run.path, images_per_epoch=len(train_set), mlflow_uri=config.mlflow_uri)
        ctx = RunContext(config, run, model, train_set, val_set, data.test, meta, verbose, resume_from is not None, loggers, class_weights)
        # Ctrl-C or SIGTERM from here on: stop cleanly, say what is saved and how to go on; the loggers' runs end as this does.
        with sigterm_as_interrupt(), loggers:
            try:
                trained = _fit(ctx)
            except (NonFiniteLoss, FashionCNNError):  # diverged, or its first epoch could not be saved (a full disk)
                if ddp.is_main and resume_from is None and completed_epochs(run.path) == 0:
                    shutil.rmtree(run.path, ignore_errors=True)  # nothing worth keeping, and the name stays free
                raise
            if not ddp.is_main:  # rank 0 evaluates and writes; the weights are the same on every rank
                distributed.cleanup()
                return RunResult(run.path, trained.history)
            try:
                # The validation metrics fit logged for the final weights are final, where this process logged them.
                logged = resume_from is None and ddp.world_size == 1 and not config.ema and not config.tta
                metrics = _finish(ctx, trained, _logged_val(trained.history, trained.early) if logged else None)
            except KeyboardInterrupt:
                raise Interrupted(_finish_interrupted_message(run, len(trained.history))) from None
        distributed.cleanup()
        return RunResult(run.path, trained.history, metrics)


def resume(run_dir: str | Path, verbose: bool = True, **overrides) -> RunResult:
    """Continue a run after a crash, a kill or Ctrl-C, from its last completed epoch.

    The history, optimizer, early-stopping counters, best score and RNG states come back from the run's
    ``state.safetensors``, so the result equals an uninterrupted run (see ``fashion_cnn.training.checkpoint``).

    Args:
        run_dir: the run directory (``runs/NAME``).
        verbose: print progress.
        **overrides: ``epochs`` (may be raised to train further), ``data_dir``, ``device``, ``threads``;
            any other setting must equal the run's own (from its ``config.json``).

    Example:
        >>> import shutil; run = shutil.copytree(run_dir, tmp / "tutorial")     # a finished 3-epoch run
        >>> len(resume(run, verbose=False, epochs=4).history)                      # ... trained one epoch further
        4
    """
    config = resumed_config(run_dir, overrides)
    if verbose:
        done = completed_epochs(run_dir)
        print(
            f"Resuming {run_dir} after epoch {done} of {config.epochs}" if done else f"{run_dir} has no completed epoch; starting it again"
        )
    return train(config, verbose, resume_from=run_dir)


def _where(device, precision: str, asked: str, processes: int, block: str | None = None, wino: list[int] = ()) -> str:
    """``cpu (AMD EPYC, AVX2 kernels), fp32 (auto: no native bf16 here), first block: fused kernel (AVX2,
    OpenMP), second block: Winograd kernel, 2 threads``: the device (on the CPU its name and the kernel level
    PyTorch runs), the arithmetic, how the first conv block runs where the model has one (``block``:
    ``kernels.backend.first_block_runs``) and which blocks the Winograd kernel computes (``wino``: ``winograd_blocks``),
    the parallelism."""
    place = str(device)
    if device.type == "cpu":
        place += f" ({cpu_name()}, {torch.backends.cpu.get_cpu_capability()} kernels)"
    arithmetic = "bf16 autocast" if precision == "bf16" else "fp32"
    if asked == "auto":
        arithmetic += " (auto: native bf16 here)" if precision == "bf16" else " (auto: no native bf16 here)"
    threads = torch.get_num_threads()
    parts = [place, arithmetic]
    if block:
        parts.append(f"first block: {block}")
    if wino:
        names = {2: "second", 3: "third", 4: "fourth"}
        parts.append(f"{' and '.join(names.get(i, f'#{i}') for i in wino)} block{'s' if len(wino) > 1 else ''}: Winograd kernel")
    parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    if processes > 1:
        parts.append(f"{processes} processes")
    return ", ".join(parts)


def _balance_record(config: TrainConfig, train_set: LabeledImages, classes, weights: np.ndarray | None) -> dict:
    """What config.json records of the classes' balance: the training split's count of each class, the weights
    the loss used (None: unweighted) and, for a weights file, its absolute path (a resumed run reads it again)."""
    record = {
        "train_class_counts": dict(zip(classes, class_counts(train_set.labels, len(classes)).tolist())),
        "class_weights_used": weights_by_name(weights, classes),
    }
    if config.class_weight not in (None, BALANCED):
        record["class_weight"] = str(Path(config.class_weight).resolve())
    return record


def _check_same_weights(run: RunDir, weights: np.ndarray | None, classes) -> None:
    """A resumed run must weight its loss as it started: refuse a weights file edited in between."""
    recorded = (run.config() or {}).get("class_weights_used", weights_by_name(weights, classes))
    if recorded != weights_by_name(weights, classes):
        raise FashionCNNError(
            f"the class weights are not those {run} started with ({recorded}); restore the weights file or start a new run"
        )


def _balance_line(config: TrainConfig, classes, weights: np.ndarray | None) -> str:
    """``Class weights (balanced): T-shirt/top 0.74, ...`` and/or ``balanced sampling``, for the start of a run."""
    parts = []
    if weights is not None:
        source = "balanced" if config.class_weight == BALANCED else config.class_weight
        parts.append(f"class weights ({source}): " + ", ".join(f"{name} {w:.3g}" for name, w in zip(classes, weights)))
    if config.balanced_sampling:
        parts.append("balanced sampling (every class drawn about equally often)")
    text = "; ".join(parts)
    return text[0].upper() + text[1:]


def train_and_val(data: Dataset, config: TrainConfig) -> tuple[LabeledImages, LabeledImages]:
    """The training and validation sets of ``config``: a folder dataset with its own val/ is validated on it,
    otherwise the tutorial's split of train; ``--limit`` then keeps the first images of the training set."""
    if data.val is not None:
        train_set, val_set = data.train, data.val
    else:
        train_set, val_set = train_val_split(data.train, config.val_fraction, config.split_seed)
    if config.limit:
        train_set = train_set.subset(slice(0, config.limit))
    return train_set, val_set


def _fit(ctx: RunContext) -> Trained:
    """``fit`` with the tutorial's callbacks, the run directory's writers and a clean stop on Ctrl-C/SIGTERM."""
    config, run, model = ctx.config, ctx.run, ctx.model
    early = EarlyStopping(config.monitor, patience=config.patience, restore_best_weights=config.restore_best_weights)
    checkpoint = ModelCheckpoint(run.best, config.monitor, save_best_only=True)
    # ResumeState after those: it snapshots them once they have finished the epoch. The loggers last: an epoch they
    # were sent is saved, so a resumed run never sends it twice (see training.loggers).
    callbacks = [checkpoint, early, RunWriter(run.path), ResumeState(run.path, [checkpoint, early], resume=ctx.resumed), *ctx.loggers]
    optimizer = make_optimizer(
        config.optimizer,
        model,
        config.lr,
        epsilon=config.adam_epsilon,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        scheduled=config.schedule != "constant",
    )
    steps = steps_per_epoch(len(ctx.train_set), config.batch_size)
    scheduler = make_schedule(config.schedule, optimizer, config.lr, config.epochs, steps, config.warmup_epochs)
    started = time.perf_counter()
    try:
        history = fit(
            model,
            ctx.train_set,
            ctx.val_set,
            epochs=config.epochs,
            batch_size=config.batch_size,
            optimizer=optimizer,
            scheduler=scheduler,
            callbacks=callbacks,
            seed=config.seed,
            precision=config.precision,
            verbose=ctx.verbose,
            meta=ctx.meta,
            augment=Augment(config.shift, config.flip, config.erase),
            label_smoothing=config.label_smoothing,
            ema=config.ema,
            class_weight=ctx.class_weights,
            balanced_sampling=config.balanced_sampling,
        )
    except KeyboardInterrupt:
        raise Interrupted(interrupted_message(run.path, config.epochs)) from None
    except NonFiniteLoss as e:
        kept = f"the best model so far is kept in {run.best}" if run.best.is_file() else "no epoch had finished, so no model was kept"
        raise NonFiniteLoss(f"{e}; {kept}", e.epoch, e.step) from None
    return Trained(history, early, time.perf_counter() - started)


def _finish(ctx: RunContext, trained: Trained, val: dict | None = None) -> dict:
    """After the last epoch: the final metrics (``val``: the validation metrics where known already, see
    ``_logged_val``), the best model with them, metrics.json, the pictures and report."""
    run, model, early = ctx.run, ctx.model, trained.early
    restored = ctx.config.restore_best_weights and early.best_epoch is not None  # the model in memory is run.best's
    trust = _calibrate(ctx) if ctx.config.calibrate and restored else {}
    metrics, test_probs = _final_metrics(ctx, trained, None if trust else val)  # a calibrated model's loss is its own
    metrics.update(trust)
    if restored:
        # The final weights are the best epoch's: store them again, now with the final metrics (and calibration).
        save_model(run.best, model, **ctx.meta, epoch=metrics["best_epoch"], metrics=metrics)
    run.write_metrics(metrics)
    if ctx.verbose:
        if early.stopped_epoch is not None:
            print(f"Epoch {early.stopped_epoch + 1}: early stopping; restored the weights of epoch {metrics['best_epoch']}")
        print(f"val   loss {metrics['val']['loss']:.4f}  accuracy {metrics['val']['accuracy']:.4f}")
        print(f"test  loss {metrics['test']['loss']:.4f}  accuracy {metrics['test']['accuracy']:.4f}")
        if trust:
            c, o = trust["calibration"], trust["ood"]
            print(
                f"calibrated: temperature {c['temperature']:.3f}, test ECE {c['test_ece_before']:.4f} → {c['test_ece_after']:.4f}; "
                f"not-clothing threshold {o['threshold']:.4f} (keeps {o['keep']:.0%} of validation)"
            )
        print(f"Wrote {run}/")
    # loss.png, accuracy.png, report.html (with --log also confusion.png); the report's test analysis reuses the
    # probabilities just computed
    pictures = write_run_pictures(
        run.path, model, ctx.test_set, ctx.meta, verbose=ctx.verbose, test_probs=test_probs, confusion=bool(ctx.loggers)
    )
    ctx.loggers.log_final(metrics, [*pictures, run.best, run.file(METRICS), run.file(CONFIG)])
    if ctx.verbose:
        for line in ctx.loggers.where():
            print(f"Logged to {line}")
    return metrics


def _calibrate(ctx: RunContext) -> dict:
    """The default step after training: the temperature (on validation) and the not-clothing detector (prototypes
    of the training images, threshold on validation) recorded in the model; what metrics.json keeps of them."""
    calibration = calibrate(ctx.model, ctx.val_set, ctx.test_set)
    ood = fit_detector(ctx.model, ctx.train_set, ctx.val_set, seed=ctx.config.seed)
    return {"calibration": calibration, "ood": ood}


def _finish_interrupted_message(run: RunDir, epochs: int) -> str:
    if run.file(METRICS).is_file():
        return (
            f"interrupted while drawing the pictures and report; the run is complete in {run}: "
            f"redraw them with 'fashion-cnn plot-history {run}' and 'fashion-cnn report {run}'"
        )
    return (
        f"interrupted after training, while computing the final metrics; all {epochs} epochs are saved in {run}: "
        f"finish with 'fashion-cnn train --resume {run}'"
    )


def _logged_val(history: History, early: EarlyStopping) -> dict | None:
    """The validation loss and accuracy ``fit`` logged for the weights training ended with: the best epoch's
    where EarlyStopping restored them, else the last epoch's. ``fit`` computed them with ``evaluate`` on these
    same weights in this process, so they are what a second pass over the validation set would give, to the
    last bit (``tests/test_training.py`` checks), without the half second that pass takes. None if not logged."""
    restored = early.restore_best_weights and early.best_weights is not None
    epoch = early.best_epoch + 1 if restored else len(history)
    row = next((e for e in history.epochs if e.get("epoch") == epoch), {})
    if "val_loss" not in row or "val_accuracy" not in row:
        return None
    return {"loss": row["val_loss"], "accuracy": row["val_accuracy"]}


def _final_metrics(ctx: RunContext, trained: Trained, val: dict | None = None) -> tuple[dict, np.ndarray]:
    """The final metrics, and the test set's probabilities (one pass over it serves both); ``val``: the
    validation metrics where they are known already (``_logged_val``), else computed here."""
    tta, history, early = ctx.config.tta, trained.history, trained.early
    test, test_probs = evaluate_and_predict(ctx.model, ctx.test_set, tta=tta)
    metrics = {
        "val": val or evaluate(ctx.model, ctx.val_set, tta=tta),
        "test": test,
        "tta": tta,
        "epochs_run": len(history),
        "best_epoch": None if early.best_epoch is None else early.best_epoch + 1,
        "stopped_early": early.stopped_epoch is not None,
        "seconds_per_epoch": sum(history["seconds"]) / len(history),
        "train_seconds": trained.seconds,
        "train_images_per_second": len(ctx.train_set) * len(history) / sum(history["seconds"]),
        # When, in the file itself: a copied run folder's files get new modification times.
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return metrics, test_probs
