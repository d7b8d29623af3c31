"""The tutorial's pictures and the ones a practitioner draws next, each returned as a matplotlib Figure.

    fashion-cnn plot-history runs/tutorial                     # loss.png, accuracy.png
    fashion-cnn show --split val --index 0                     # the tutorial's handbag
    fashion-cnn show --grid 5x5 --lang ko                      # a labelled gallery
    fashion-cnn predict runs/tutorial --split val --index 0 --lang ko --plot probs.png
    fashion-cnn evaluate runs/tutorial --report --top-losses 16   # confusion.png, top-losses.png
    fashion-cnn lr-find --data-dir ../shared/data/fashion-mnist -o lr.png   # loss against learning rate

Korean labels are drawn with NanumGothic (see ``fonts``); everything else uses matplotlib's defaults.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import FashionCNNError
from ..inference.calibration import ECE_BINS, expected_calibration_error, reliability_bins
from ..rundir import RunDir
from .analysis import Analysis
from .figures import new_figure
from .fonts import font_for

BLUE, GREEN, RED, GREY, INK = "#2563eb", "#16a34a", "#dc2626", "#94a3b8", "#0f172a"


def _font(*texts, size: float, bold: bool = False) -> dict:
    """Text keyword arguments: NanumGothic for text with Hangul, matplotlib's default font otherwise.

    A ``fontproperties`` argument overrides ``fontsize`` and ``weight``, so size and boldness go into it.
    """
    prop = font_for(*texts, bold=bold, size=size)
    if prop is not None:
        return {"fontproperties": prop}
    return {"fontsize": size, "weight": "bold" if bold else "normal"}


def _percent(p: float) -> str:
    return "<1%" if p < 0.01 else f"{p:.0%}"


def _history_rows(history) -> list[dict]:
    if isinstance(history, (str, os.PathLike)):
        return RunDir(history).history()
    rows = getattr(history, "epochs", history)
    if not rows:
        raise FashionCNNError("the history is empty: no epoch finished, so there is nothing to plot; train for at least one epoch")
    return list(rows)


def plot_history(history, metric: str = "loss"):
    """Training vs validation ``metric`` per epoch, as in the tutorial's ``plt.plot(history.history[...])``.

    Args:
        history: a ``History``, the list of per-epoch dicts in ``history.json``, or a run directory.
        metric: ``loss`` or ``accuracy`` (any key of the history; ``val_<metric>`` is drawn beside it).

    The best epoch (lowest ``val_loss``) is marked with a dotted line.

    Example:
        >>> fig = plot_history(run_dir, "loss")       # or a History, or the rows of history.json
        >>> [line.get_label() for line in fig.axes[0].get_lines()]
        ['training loss', 'validation loss', 'best epoch (3, lowest val_loss)']
    """
    rows = _history_rows(history)
    if metric not in rows[0]:
        raise FashionCNNError(
            f"the history has no {metric!r}; choose one of: {', '.join(k for k in rows[0] if k not in ('epoch', 'seconds'))}"
        )
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    fig = new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.plot(epochs, [r[metric] for r in rows], "o-", color=BLUE, linewidth=2, markersize=5, label=f"training {metric}")
    val_key = f"val_{metric}"
    if val_key in rows[0]:
        ax.plot(epochs, [r[val_key] for r in rows], "s-", color="#ea580c", linewidth=2, markersize=5, label=f"validation {metric}")
    if "val_loss" in rows[0] and len(rows) > 1:
        best = epochs[int(np.argmin([r["val_loss"] for r in rows]))]
        ax.axvline(best, color=GREY, linestyle=":", linewidth=1.5, label=f"best epoch ({best}, lowest val_loss)")
    _epoch_axes(ax, metric, epochs)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def _epoch_axes(ax, metric: str, epochs: list[int]) -> None:
    """A per-epoch axes as the tutorial's plots have it: whole epochs along x, ``metric`` up, a light grid."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric.capitalize()} per epoch", fontsize=12, weight="bold")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(set(epochs)) == 1:
        ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
        ax.set_xticks(epochs[:1])
    ax.grid(True, color="#e2e8f0")
    ax.spines[["top", "right"]].set_visible(False)


def plot_runs(runs, metrics=("loss", "accuracy")):
    """Several runs' curves overlaid: one panel per metric, one colour per run, training solid, validation dashed.

    Args:
        runs: a mapping of run name to its history (a ``History``, the rows of history.json, or a run
            directory), or a list of run directories (named by their folders).
        metrics: the panels, left to right (any key of the histories; ``val_<metric>`` is drawn beside it).

    Each line is labelled ``NAME: training METRIC`` or ``NAME: validation METRIC``; the legend under the
    panels names each run by its colour and each kind of line by its style.

    Example:
        >>> fig = plot_runs({"a": run_dir, "b": run_dir})
        >>> [line.get_label() for line in fig.axes[0].get_lines()]
        ['a: training loss', 'a: validation loss', 'b: training loss', 'b: validation loss']
    """
    from matplotlib.lines import Line2D

    if not isinstance(runs, dict):
        runs = {os.path.basename(os.path.normpath(p)): p for p in runs}
    if not runs:
        raise FashionCNNError("no runs to plot; pass at least one run directory or history")
    histories = {name: _history_rows(h) for name, h in runs.items()}
    colours = _distinct_colours(len(histories))
    fig = new_figure(5.2 * len(metrics), 4.4, layout="constrained")
    for ax, metric in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        shown = []
        for (name, rows), colour in zip(histories.items(), colours):
            epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
            for key, style, kind in ((metric, "-", "training"), (f"val_{metric}", "--", "validation")):
                if key in rows[0]:
                    values = [r.get(key, np.nan) for r in rows]
                    ax.plot(epochs, values, style, color=colour, marker="o", markersize=3, label=f"{name}: {kind} {metric}")
            shown += epochs
        if not ax.get_lines():
            raise FashionCNNError(f"no run's history has {metric!r}; choose metrics the histories have, like loss or accuracy")
        _epoch_axes(ax, metric, shown)
    # The legend: a run per colour, then a kind of line per style (proxies, not drawn on any axes).
    handles = [Line2D([], [], color=c, linewidth=2.5, label=name) for name, c in zip(histories, colours)]
    handles += [Line2D([], [], color=INK, linestyle=s, label=kind) for s, kind in (("-", "training"), ("--", "validation"))]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)
    return fig


def _distinct_colours(n: int) -> list:
    """``n`` colours that tell runs apart: matplotlib's tab10 up to 10, tab20 up to 20, then evenly around the hue circle."""
    import matplotlib

    if n <= 20:
        table = matplotlib.colormaps["tab10" if n <= 10 else "tab20"].colors
        return [matplotlib.colors.to_hex(c) for c in table[:n]]
    return [matplotlib.colors.to_hex(matplotlib.colormaps["hsv"](i / n)) for i in range(n)]


def show_image(image, title: str | None = None, cmap: str = "gray_r", colorbar: bool = True):
    """One image as the tutorial shows it: ``plt.imshow(image, cmap="gray_r")`` with a colour bar.

    Args:
        image: uint8 pixels (H, W).
        title: e.g. ``"val[0]: Bag"``.
        cmap: a matplotlib colour map (``gray_r``: dark ink on white, as in the tutorial).
    """
    image = _check_image(image)
    fig = new_figure(4.2, 3.6)
    ax = fig.add_subplot()
    im = ax.imshow(image, cmap=_cmap(cmap), vmin=0, vmax=255)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title, **_font(title, size=12))
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_images(images, titles=None, rows: int = 5, cols: int = 5, cmap: str = "gray_r", colors=None, suptitle: str | None = None):
    """A ``rows`` x ``cols`` gallery, each image with its label underneath (the tutorial's 5x5 grid).

    Args:
        images: uint8 pixels (N, H, W); the first ``rows * cols`` are drawn.
        titles: one caption per image (e.g. class names); may hold newlines.
        colors: one caption colour per image (default ink).
        suptitle: a heading above the grid.
    """
    images = np.asarray(images)
    if images.ndim != 3 or len(images) == 0:
        raise FashionCNNError(f"a gallery needs images of shape (N, H, W) with N >= 1, got {images.shape}")
    if rows < 1 or cols < 1:
        raise FashionCNNError(f"a gallery needs at least 1x1 cells, got {rows}x{cols}")
    n = min(len(images), rows * cols)
    rows = min(rows, -(-n // cols))
    lines = max((str(t).count("\n") + 1 for t in (titles or [])[:n]), default=0)
    # A fixed grid in inches: each cell is an image and the room its caption needs below it, so captions
    # never run into the next row whatever font (Hangul is taller) they use.
    cell_w, image, gap, caption_size = 1.8, 1.45, 0.18, 10
    caption_h = lines * caption_size * 1.5 / 72 + (0.06 if lines else 0)
    head = 0.5 if suptitle else 0.05
    width, height = cols * cell_w, head + rows * (image + caption_h + gap)
    fig = new_figure(width, height)
    for k in range(n):
        r, c = divmod(k, cols)
        top = height - head - r * (image + caption_h + gap)
        ax = fig.add_axes(((c * cell_w + (cell_w - image) / 2) / width, (top - image) / height, image / width, image / height))
        ax.set_axis_off()
        ax.imshow(images[k], cmap=_cmap(cmap), vmin=0, vmax=255)
        if titles is not None:
            text = str(titles[k])
            ax.text(
                0.5,
                -0.04,
                text,
                transform=ax.transAxes,
                ha="center",
                va="top",
                color=(colors[k] if colors is not None else INK),
                linespacing=1.2,
                **_font(text, size=caption_size),
            )
    if suptitle:
        fig.suptitle(suptitle, y=1 - 0.12 / height, va="top", **_font(suptitle, size=13, bold=True))
    return fig


def plot_probabilities(probs, names, true: int | None = None, title: str | None = None):
    """The tutorial's bar chart of one image's 10 predicted probabilities, class names on the axis.

    The predicted class is blue; the true class, when given and different, green. Korean names render in
    NanumGothic.

    Args:
        probs: (classes,) probabilities, e.g. ``predict_proba(model, image)``.
        names: class names in label order (``data.class_names("ko")`` for the tutorial's Korean).
        true: the true label, if known.
        title: default ``predicted NAME (P%)``.
    """
    probs = np.asarray(probs, dtype=float).ravel()
    names = [str(n) for n in names]
    if len(probs) != len(names):
        raise FashionCNNError(f"{len(probs)} probabilities but {len(names)} class names; pass one name per class")
    top = int(probs.argmax())
    colors = [GREY] * len(probs)
    if true is not None and true != top:
        colors[true] = GREEN
    colors[top] = BLUE
    if title is None:
        title = f"predicted {names[top]} ({probs[top]:.1%})" + ("" if true is None else f" · true {names[true]}")
    fig = new_figure(max(6.4, 0.75 * len(probs)), 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(probs))
    ax.bar(x, probs, color=colors, width=0.7)
    for i, p in enumerate(probs):
        if p >= 0.005:
            ax.text(i, p + 0.015, f"{p:.1%}", ha="center", va="bottom", fontsize=8.5, color=INK)
    ax.set_xticks(x, names, rotation=35, ha="right", rotation_mode="anchor", **_font(*names, size=10))
    ax.set_ylim(0, 1.1)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("probability")
    ax.set_title(title, **_font(title, size=12, bold=True))
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis="y", color="#e2e8f0")
    ax.set_axisbelow(True)
    fig.tight_layout()
    return fig


def plot_reliability(probs, labels, bins: int = ECE_BINS, title: str | None = None):
    """The reliability diagram: per bin of the top probability, how often the model was right (bars) against how
    sure it was (the diagonal); the gap is shaded red where it was over-confident. ECE in the title.

    Args:
        probs: (N, classes) probabilities, e.g. ``predict_proba(model, test.images)``.
        labels: (N,) true labels.
        bins: equal-width bins of the top probability (15, as the ECE).
        title: what comes before `` · ECE x.xx% · N images`` (default ``reliability``).
    """
    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels)
    if probs.ndim != 2 or len(probs) != len(labels) or not len(labels):
        raise FashionCNNError(f"probabilities of shape {probs.shape} for {len(labels)} labels; pass (N, classes) and N labels")
    count, accuracy, confidence = reliability_bins(probs, labels, bins)
    ece = expected_calibration_error(probs, labels, bins)
    fig = new_figure(5.6, 5.2)
    ax = fig.add_subplot()
    left = np.arange(bins) / bins
    filled = count > 0
    ax.bar(left[filled], accuracy[filled], width=1 / bins, align="edge", color=BLUE, edgecolor="white", label="accuracy")
    over = filled & (confidence > accuracy)
    ax.bar(
        left[over],
        (confidence - accuracy)[over],
        bottom=accuracy[over],
        width=1 / bins,
        align="edge",
        color=RED,
        alpha=0.35,
        edgecolor=RED,
        label="over-confident by",
    )
    ax.plot([0, 1], [0, 1], color=INK, linestyle="--", linewidth=1, label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", frameon=False)
    ax.set_title(f"{title or 'reliability'} · ECE {ece:.2%} · {len(labels):,} images", color=INK)
    return fig


def plot_lr_find(result):
    """The learning-rate range test: training loss against learning rate (log scale), with the suggested rate marked.

    Args:
        result: a ``RangeTest`` (``fashion_cnn.training.lr_find.lr_range_test``): its ``lrs``, ``losses``
            (each batch's, drawn faint), ``smoothed`` (the curve read), ``suggestion`` and its index, and
            whether it ``diverged`` (the last rate, marked).

    The y axis stops a little above the smoothed loss at the start, so the diverging tail does not flatten the
    part worth reading.
    """
    lrs, losses, smoothed = (np.asarray(getattr(result, k), dtype=float) for k in ("lrs", "losses", "smoothed"))
    if not len(lrs) or not (len(lrs) == len(losses) == len(smoothed)):
        raise FashionCNNError(f"a range test needs as many learning rates as losses, got {len(lrs)}, {len(losses)} and {len(smoothed)}")
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    ax.plot(lrs, losses, color=GREY, linewidth=1, alpha=0.6, label="batch loss")
    ax.plot(lrs, smoothed, color=BLUE, linewidth=2, label="smoothed loss")
    i = result.suggestion_index
    ax.axvline(result.suggestion, color=RED, linestyle="--", linewidth=1.2)
    ax.plot([result.suggestion], [smoothed[i]], "o", color=RED, markersize=8, label=f"suggested {result.suggestion:.1e} ({result.method})")
    if result.diverged:
        ax.axvline(lrs[-1], color=INK, linestyle=":", linewidth=1.2, label=f"diverged at {lrs[-1]:.1e}")
    ax.set_xscale("log")
    finite = smoothed[np.isfinite(smoothed)]
    # From below the lowest batch loss up to the lowest smoothed one (where the descent ends) to a little above the start.
    descent = losses[: int(np.argmin(finite)) + 1]
    low, start = float(min(np.min(finite), np.min(descent[np.isfinite(descent)]))), float(finite[0])
    ax.set_ylim(low - 0.1 * (start - low) - 0.02 * abs(low), start + 0.35 * max(start - low, 0.05 * abs(start)))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(f"Learning-rate range test · suggested {result.suggestion:.1e}", fontsize=12, weight="bold", color=INK)
    ax.grid(True, which="major", color="#e2e8f0")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, loc="lower left")
    fig.tight_layout()
    return fig


def plot_confusion_matrix(confusion, names, title: str | None = None):
    """The confusion matrix with each cell's count; colour is the share of the true class (row).

    Args:
        confusion: (classes, classes) counts, rows true, columns predicted (``Analysis.confusion``).
        names: class names in label order.
    """
    cm = np.asarray(confusion)
    names = [str(n) for n in names]
    if cm.shape != (len(names), len(names)):
        raise FashionCNNError(f"a confusion matrix for {len(names)} classes must be {len(names)}x{len(names)}, got {cm.shape}")
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    side = max(5.5, 0.62 * len(names) + 2.2)
    fig = new_figure(side + 0.6, side)
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    big = cm.max() >= 1000
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{cm[i, j]:,}",
                ha="center",
                va="center",
                fontsize=7.5 if big else 8.5,
                color="white" if share[i, j] > 0.55 else (INK if cm[i, j] else "#cbd5e1"),
            )
    ax.set_xticks(np.arange(len(names)), names, rotation=40, ha="right", rotation_mode="anchor", **_font(*names, size=10))
    ax.set_yticks(np.arange(len(names)), names, **_font(*names, size=10))
    ax.set_xlabel("predicted class", fontsize=11)
    ax.set_ylabel("true class", fontsize=11)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("share of the true class")
    bar.outline.set_visible(False)
    total = int(cm.sum())
    if title is None:
        title = f"Confusion matrix · {total:,} images · accuracy {np.trace(cm) / max(total, 1):.2%}"
    ax.set_title(title, pad=12, **_font(title, size=12, bold=True))
    fig.tight_layout()
    return fig


def plot_top_losses(analysis: Analysis, n: int = 16, cols: int | None = None, cmap: str = "gray_r"):
    """The ``n`` most confidently wrong images: predicted vs true class with the probabilities.

    Each caption reads ``predicted (p) / true (p)``; red when the prediction is wrong.
    """
    idx = analysis.top_losses(n)
    if len(idx) == 0:
        raise FashionCNNError("no images to show; pass --top-losses 1 or more and a non-empty split")
    cols = cols or -(-len(idx) // -(-len(idx) // 8))  # at most 8 a row, rows as full as possible
    titles, colors = [], []
    for i in idx:
        pred, true = int(analysis.predicted[i]), int(analysis.labels[i])
        titles.append(
            f"{analysis.names[pred]} {_percent(analysis.probs[i, pred])}\ntrue: {analysis.names[true]} {_percent(analysis.probs[i, true])}"
        )
        colors.append(RED if pred != true else GREEN)
    return plot_images(
        analysis.data.images[idx],
        titles,
        rows=-(-len(idx) // cols),
        cols=cols,
        cmap=cmap,
        colors=colors,
        suptitle=f"Top {len(idx)} losses on {analysis.split}: predicted (probability) / true class",
    )


def _cmap(name: str):
    import matplotlib

    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise FashionCNNError(f"unknown colour map {name!r}; try gray_r (the tutorial's), gray, viridis or binary") from None


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise FashionCNNError(f"an image must be 2-D pixels (H, W), got shape {image.shape}")
    return image
