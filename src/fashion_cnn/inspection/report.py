"""One self-contained HTML page per run: headline metrics, curves, confusion matrix, per-class table, top
losses, the model, timings, configuration and environment. Images are embedded as base64 and the Korean
glyphs as a small font subset, so the file opens anywhere without a network.

    fashion-cnn report runs/tutorial --data-dir ../shared/data/fashion-mnist    # runs/tutorial/report.html

``fashion-cnn train`` writes it at the end of every run.

The page skeleton and its look are package files, ``templates/report.html`` and ``templates/report.css``
(``string.Template``: ``$name`` placeholders, ``$$`` for a literal dollar). ``build_report`` reads the
run and composes the page from one small function per section; each returns its HTML and the texts whose
Hangul glyphs the embedded font must hold.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import os
import re
import string
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from ..environment import environment as this_environment
from ..environment import isa_line
from ..errors import FashionCNNError
from ..files import atomic_write_text
from ..inference.calibration import expected_calibration_error
from ..models.files import load_model
from ..models.metadata import temperature_of
from ..models.summary import LayerInfo, layer_table
from ..rundir import CONFIG, HISTORY_JSON, REPORT, RunDir
from ..terminal import duration
from ..version import __version__
from .analysis import Analysis
from .attribution import gradcam
from .embedding import embeddings, nearest_neighbours, project_2d
from .figures import png_data_uri
from .fonts import CSS_FAMILY, hangul_css
from .inside import plot_embedding, plot_feature_maps, plot_filters, plot_gradcams
from .internals import conv_filters, conv_layer_names, layer_outputs, untrained_like
from .plots import plot_confusion_matrix, plot_history, plot_reliability, plot_top_losses

TOP_LOSSES = 16
#: Images of the analysed split in the report's embedding map, and its t-SNE iterations (half the default: the
#: map is drawn at the end of every training run; ~1 s for 1,000 images here, ``fashion-cnn embedding`` draws the full one).
EMBEDDING_IMAGES, EMBEDDING_ITERATIONS = 1000, 500


def build_report(
    run_dir: str | os.PathLike,
    analysis: Analysis | None = None,
    *,
    model=None,
    environment: dict | None = None,
    top_losses: int = TOP_LOSSES,
    korean_names=None,
    inside: bool = True,
    curves: tuple[bytes, bytes] | None = None,
) -> str:
    """The run's report as an HTML string.

    Args:
        run_dir: a run directory written by ``fashion-cnn train``.
        analysis: predictions on a split (``analyze(model, test)``) for the confusion matrix, per-class
            table and top losses; without it those sections are left out.
        model: the model for the layer table (default: the run's best.safetensors).
        environment: where it was trained (default: the run's environment.json, else this machine).
        top_losses: how many of the most confidently wrong images to show (0: none).
        korean_names: class names in Korean, shown beside the English ones (default: the model's).
        inside: add "Inside the model" (filters trained and untrained, feature maps, Grad-CAM of top losses,
            the embedding map; a few seconds more).
        curves: the loss and accuracy curves as PNG bytes where they are drawn already (``train`` passes the
            loss.png and accuracy.png it has just written); default: drawn from the run's history.
    """
    run = RunDir.existing(run_dir)
    config = run.config() or {}
    history = run.history(required=False) or []
    metrics = run.metrics() or {}
    if not (config or history):
        raise FashionCNNError(f"{run} has neither {CONFIG} nor {HISTORY_JSON}; pass a run directory written by 'fashion-cnn train'")
    model = model if model is not None else load_model(run.path)
    meta = getattr(model, "meta", {})
    env_note = "recorded when the run was trained"
    if environment is None:
        environment = run.environment()
        if environment is None:
            environment, env_note = this_environment(), "of the machine that made this report (the run did not record its own)"
    if korean_names is None:
        korean_names = meta.get("classes_ko")
    test, val = dict(metrics.get("test") or {}), dict(metrics.get("val") or {})
    if analysis is not None and analysis.split in ("test", "val"):
        # An unfinished run has no metrics.json; the analysis still knows its split's accuracy.
        (test if analysis.split == "test" else val).setdefault("accuracy", analysis.accuracy)
    arch = getattr(model, "arch", {}).get("name", config.get("model", "model"))
    dataset = (meta.get("dataset") or {}).get("name") or config.get("dataset", "?")
    layers = layer_table(model)

    # The embedding map's t-SNE (about a second) runs in a worker thread while the other figures are drawn.
    embedding = _start_embedding(model, analysis) if inside else None
    sections = [
        _curves(history, curves),
        _errors(analysis, korean_names) if analysis is not None else None,
        _balance(analysis, config) if analysis is not None else None,
        _calibration(analysis, meta) if analysis is not None else None,
        _top_losses(analysis, top_losses) if analysis is not None else None,
        _inside(model, analysis, korean_names, config.get("seed", 0), embedding) if inside else None,
        _model(arch, layers),
        _timings(history, metrics, config),
        _configuration(config),
        _environment(environment or {}, env_note),
    ]
    finished = run.finished_at()
    subtitle = f"{arch} on {dataset}" + (f" · finished {finished}" if finished else "")
    return _page(
        run,
        subtitle,
        _headline(test, val, metrics, metrics.get("epochs_run", len(history)), layers),
        [s for s in sections if s is not None],
    )


def write_report(run_dir: str | os.PathLike, path: str | os.PathLike | None = None, analysis: Analysis | None = None, **kwargs) -> Path:
    """Write ``build_report(run_dir, analysis, ...)`` atomically to ``path`` (default ``run_dir/report.html``).

    Example:
        >>> test = load_split("test", data_dir=toy_data)
        >>> path = write_report(run_dir, tmp / "report.html", analysis=analyze(model, test, split="test"))
        >>> 'id="test-accuracy"' in path.read_text()
        True
    """
    path = Path(path) if path is not None else Path(run_dir) / REPORT
    page = build_report(run_dir, analysis, **kwargs)
    try:
        atomic_write_text(path, page)
    except OSError as e:
        raise FashionCNNError(f"cannot write {path} ({e.strerror or e}); choose a writable location with -o") from None
    return path


# --- the page --------------------------------------------------------------------------------------------


class _Section(NamedTuple):
    """One ``<section>`` of the page and its link in the header's navigation."""

    id: str
    nav: str  # the link's text (plain)
    title: str  # the heading (HTML)
    html: str
    texts: tuple[str, ...] = ()  # texts whose Hangul glyphs the embedded font must hold


@functools.cache
def _template(name: str) -> string.Template:
    return string.Template((resources.files("fashion_cnn.inspection") / "templates" / name).read_text(encoding="utf-8"))


def _page(run: RunDir, subtitle: str, cards: str, sections: list[_Section]) -> str:
    """The whole page: ``templates/report.html`` around the headline cards and the sections."""
    texts = [t for s in sections for t in s.texts] + [run.path.name, subtitle]
    return _template("report.html").substitute(
        version=_e(__version__),
        run_name=_e(run.path.name),
        font_face=hangul_css("".join(texts)),
        css=_template("report.css").substitute(hangul_family=CSS_FAMILY),
        subtitle=_e(subtitle),
        nav="".join(f'<a href="#{s.id}">{_e(s.nav)}</a>' for s in sections),
        cards=cards,
        sections="".join(f'<section id="{s.id}"><h2>{s.title}</h2>{s.html}</section>' for s in sections),
        made=_e(dt.datetime.now().strftime("%Y-%m-%d %H:%M")),
        run_path=_e(run.path),
    )


# --- the sections, top to bottom -------------------------------------------------------------------------


def _value_class(value: str) -> str:
    """A card's value in a smaller size when it is long text ("29 min 32 s"), so it stays on one line."""
    return "value long" if len(re.sub(r"<[^>]+>", "", value)) > 8 else "value"


def _headline(test: dict, val: dict, metrics: dict, epochs_run: int, layers: list[LayerInfo]) -> str:
    """The cards a reader wants first: test and validation accuracy, epochs, training time, parameters."""
    best_epoch = metrics.get("best_epoch")
    cards = [
        ("Test accuracy", f'<span id="test-accuracy">{_pct(test.get("accuracy"))}</span>', f"loss {_num(test.get('loss'))}", "primary"),
        ("Validation accuracy", f'<span id="val-accuracy">{_pct(val.get("accuracy"))}</span>', f"loss {_num(val.get('loss'))}", ""),
        (
            "Epochs",
            f"{epochs_run}",
            (f"best: epoch {best_epoch}" if best_epoch else "no best epoch recorded")
            + (" · stopped early" if metrics.get("stopped_early") else ""),
            "",
        ),
        ("Training time", duration(metrics.get("train_seconds")), f"{_num(metrics.get('seconds_per_epoch'), 1)} s per epoch", ""),
        ("Parameters", f"{sum(r.params for r in layers):,}", f"{len(layers)} layers", ""),
    ]
    page = "".join(
        f'<div class="card {cls}"><div class="label">{_e(label)}</div><div class="{_value_class(value)}">{value}</div><div class="note">{_e(note)}</div></div>'
        for label, value, note, cls in cards
    )
    if not metrics:
        page += (
            '<p class="warn">metrics.json is missing: training did not finish, so the final validation and test numbers are not known.</p>'
        )
    return page


def _curves(history: list[dict], drawn: tuple[bytes, bytes] | None = None) -> _Section | None:
    """Training and validation loss and accuracy per epoch (``drawn``: as PNG bytes already)."""
    if not history:
        return None
    loss, accuracy = drawn or (plot_history(history, "loss"), plot_history(history, "accuracy"))
    return _Section(
        "curves",
        "Learning curves",
        "Learning curves",
        '<div class="grid2">'
        + _figure(loss, "Training and validation loss per epoch.", "loss per epoch")
        + _figure(accuracy, "Training and validation accuracy per epoch.", "accuracy per epoch")
        + "</div>",
    )


def _calibration(analysis: Analysis, meta: dict) -> _Section:
    """How far its confidence can be trusted: the reliability diagram and the expected calibration error."""
    ece = expected_calibration_error(analysis.probs, analysis.labels)
    t = temperature_of(meta)
    how = (
        f"at the temperature {t:.3f} that <code>fashion-cnn calibrate</code> fitted on the validation split"
        if t != 1.0
        else "uncalibrated: <code>fashion-cnn calibrate RUN</code> fits a temperature on the validation split"
    )
    text = (
        f'<p>Expected calibration error on {_e(analysis.split)}: <strong id="ece">{ece:.2%}</strong> (15 bins; 0 is a model that is '
        f"right exactly as often as it is sure), {how}.</p>"
    )
    figure = _figure(
        plot_reliability(analysis.probs, analysis.labels, title=analysis.split),
        "Accuracy per bin of the top probability; the shaded part is how much more sure than right the model was.",
        "reliability diagram",
    )
    return _Section("calibration", "Calibration", "Calibration", f'<div class="grid2"><div>{text}</div>{figure}</div>')


def _errors(analysis: Analysis, korean_names) -> _Section:
    """Where it goes wrong: the confusion matrix beside the per-class table (the weakest class in bold)."""
    names = list(analysis.names)
    ko = list(korean_names) if korean_names and list(korean_names) != names and len(korean_names) == len(names) else None
    header = ["Class"] + (["한국어"] if ko else []) + ["Precision", "Recall", "F1", "Support"]
    worst = min(range(len(names)), key=lambda i: analysis.per_class[i]["f1"])
    rows = []
    for i, r in enumerate(analysis.per_class):
        name = f"<strong>{_e(r['class'])}</strong>" if i == worst else _e(r["class"])
        rows.append(
            [name]
            + ([_e(ko[i])] if ko else [])
            + [_bar_cell(r["precision"]), _bar_cell(r["recall"]), _bar_cell(r["f1"]), f"{r['support']:,}"]
        )
    for avg_name, avg in analysis.averages.items():
        rows.append(
            [f"<em>{avg_name} average</em>"]
            + ([""] if ko else [])
            + [f"{avg['precision']:.4f}", f"{avg['recall']:.4f}", f"{avg['f1']:.4f}", f"{avg['support']:,}"]
        )
    per_class = _table(header, rows, "numbers compact") + (
        f'<p class="note">Lowest F1: <strong>{_e(names[worst])}</strong> ({analysis.per_class[worst]["f1"]:.4f}). '
        "Precision: of the images predicted as the class, the share that are; recall: of the class's images, the share found; "
        f"support: the class's images in the {_e(analysis.split)} split.</p>"
    )
    confusion = _figure(
        plot_confusion_matrix(analysis.confusion, names),
        f"Rows: true class; columns: predicted class; {len(analysis.labels):,} {_e(analysis.split)} images.",
        "confusion matrix",
    )
    return _Section(
        "errors",
        "Where it goes wrong",
        f"Where it goes wrong ({_e(analysis.split)} split)",
        f'<div class="grid2 errors">{confusion}<div>{per_class}</div></div>',
        tuple(header + names + (ko or [])),
    )


#: A training split whose commonest class has this many times the images of its rarest is imbalanced.
IMBALANCE_RATIO = 1.5


def _balance(analysis: Analysis, config: dict) -> _Section | None:
    """Each class's training images (and loss weight) beside its recall and support, where the run recorded them
    and its training split was imbalanced or it corrected for that: a class seen rarely in training is the one
    whose recall drops. None otherwise (the tutorial's balanced classes need no such table)."""
    names = list(analysis.names)
    counts = _recorded_per_class(config.get("train_class_counts"), names)
    if counts is None:
        return None
    weights = _recorded_per_class(config.get("class_weights_used"), names)
    sampling = config.get("balanced_sampling") is True
    rarest, commonest = min(counts), max(counts)
    if weights is None and not sampling and commonest <= IMBALANCE_RATIO * rarest:
        return None
    total = sum(counts)
    header = ["Class", "Trained on", "Share"] + (["Weight"] if weights else []) + ["Recall", "Support"]
    rows = [
        [_e(name), f"{int(counts[i]):,}", _pct(counts[i] / total if total else None)]
        + ([f"{weights[i]:.3g}"] if weights else [])
        + [_bar_cell(analysis.per_class[i]["recall"]), f"{analysis.per_class[i]['support']:,}"]
        for i, name in enumerate(names)
    ]
    macro = analysis.averages["macro"]["recall"]
    rows.append(
        ["<em>all</em>", f"{int(total):,}", _pct(1.0 if total else None)]
        + ([""] if weights else [])
        + [f"{macro:.4f}", f"{len(analysis.labels):,}"]
    )
    how = []
    if weights:
        source = config.get("class_weight")
        how.append(
            f"weighted the loss by class (<code>--class-weight {_e('balanced' if source == 'balanced' else Path(str(source)).name)}</code>)"
        )
    if sampling:
        how.append("drew every class about equally often (<code>--balanced-sampling</code>)")
    rare = names[counts.index(rarest)]
    text = (
        f'<p>The training split\'s rarest class, <strong>{_e(rare)}</strong>, has <span id="rarest-count">{int(rarest):,}</span> images, '
        f"{commonest / rarest if rarest else float('inf'):.1f}× fewer than the commonest. Training "
        + (
            " and ".join(how)
            if how
            else "corrected nothing for it (<code>--class-weight balanced</code> or <code>--balanced-sampling</code> would)"
        )
        + f'. Macro recall on {_e(analysis.split)} (the mean of the classes\' recall, each class counting once): <strong id="macro-recall">{macro:.4f}</strong>.</p>'
    )
    return _Section(
        "balance",
        "Class balance",
        f"Class balance (training split; recall on {_e(analysis.split)})",
        text
        + _table(header, rows, "numbers compact")
        + '<p class="note">Trained on: the class\'s images in the training split; weight: its weight in the training loss; '
        f"recall: of its {_e(analysis.split)} images, the share found; support: how many there are.</p>",
    )


def _recorded_per_class(recorded, names: list[str]) -> list[float] | None:
    """A per-class number config.json recorded as ``{class name: value}``, in the analysis' class order; None where
    the run recorded none, or not for exactly these classes (a report on another dataset's classes)."""
    if not isinstance(recorded, dict) or sorted(recorded) != sorted(names):
        return None
    values = [recorded[n] for n in names]
    return values if all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in values) else None


def _top_losses(analysis: Analysis, top_losses: int) -> _Section | None:
    """The most confidently wrong images of the analysed split."""
    if top_losses <= 0 or not len(analysis.labels):
        return None
    n = min(top_losses, len(analysis.labels))
    return _Section(
        "top-losses",
        "Top losses",
        "Top losses",
        _figure(
            plot_top_losses(analysis, n),
            f"The {n} {_e(analysis.split)} images with the highest loss, most confidently wrong first: "
            "predicted class and probability, then the true class and the probability the model gave it.",
            "top losses",
        ),
    )


def _start_embedding(model, analysis: Analysis | None):
    """The first images' penultimate features and a future of their t-SNE map, or None where there is no map."""
    if analysis is None or len(analysis.labels) < 10 or not conv_layer_names(model):
        return None
    features = embeddings(model, analysis.data.images[: min(EMBEDDING_IMAGES, len(analysis.labels))])
    pool = ThreadPoolExecutor(1, thread_name_prefix="report-tsne")
    future = pool.submit(project_2d, features, "tsne", iterations=EMBEDDING_ITERATIONS)
    pool.shutdown(wait=False)
    return features, future


def _inside(model, analysis: Analysis | None, korean_names, seed: int, embedding=None) -> _Section | None:
    """The book's look inside the CNN: the first layer's filters against a fresh model's, one image's feature
    maps, Grad-CAM of the top losses, and the embedding map of the analysed split."""
    convs = conv_layer_names(model)
    if not convs:
        return None
    names = list(korean_names) if korean_names and analysis is not None and len(korean_names) == len(analysis.names) else None
    names = names or (list(analysis.names) if analysis is not None else None)
    parts, texts = [], list(names or [])
    trained = conv_filters(model, convs[0])[0]
    kernels = {"trained": trained}
    if getattr(model, "arch", None):
        fresh = untrained_like(model, seed if isinstance(seed, int) else 0)
        kernels["untrained (same seed)"] = conv_filters(fresh, convs[0])[0]
    parts.append(
        _figure(
            plot_filters(kernels, title=convs[0]),
            f"The first layer's {len(trained)} filters (red positive, blue negative, ±0.5), the trained ones above the "
            "fresh initialisation they started from, and the histogram of their weights: training widens and shapes them.",
            "first-layer filters, trained and untrained",
        )
    )
    if analysis is not None and len(analysis.labels):
        image = analysis.data.images[0]
        maps = layer_outputs(model, image, [convs[0]])[convs[0]][0]
        parts.append(
            _figure(
                plot_feature_maps(maps, title=f"{convs[0]}: {analysis.split}[0]", image=image),
                f"What the first layer outputs for {_e(analysis.split)} image 0: one map per filter.",
                "feature maps",
            )
        )
        worst = analysis.top_losses(min(8, len(analysis.labels)))
        cams = [gradcam(model, analysis.data.images[i]) for i in worst]
        captions = [f"true {names[int(analysis.labels[i])]}" for i in worst] if names else None
        parts.append(
            _figure(
                plot_gradcams(analysis.data.images[worst], cams, names or [str(k) for k in range(len(cams[0].probabilities))], captions),
                "Grad-CAM of the top losses: where in each picture the model found the evidence for its wrong answer.",
                "Grad-CAM of the top losses",
            )
        )
        if embedding is not None:  # from _start_embedding
            features, future = embedding
            n, points = len(features), future.result()
            near = nearest_neighbours(features, 0, min(8, n - 1))
            parts.append(
                _figure(
                    plot_embedding(points, analysis.labels[:n], names, images=analysis.data.images[:n], highlight=0, neighbours=near),
                    f"{n:,} {_e(analysis.split)} images placed by t-SNE from the model's penultimate features, coloured by true "
                    f"class; the star is image 0 and the circles the {len(near)} images the model finds most like it.",
                    "embedding map",
                )
            )
    return _Section("inside", "Inside the model", "Inside the model", "".join(parts), tuple(texts))


def _model(arch: str, layers: list[LayerInfo]) -> _Section:
    """The layer table: name, type, input and output shapes, parameters, and the total."""
    rows = [
        [
            f"<code>{_e(r.name)}</code>",
            _e(r.type),
            f"<code>{_e(r.input_shape)}</code>",
            f"<code>{_e(r.output_shape)}</code>",
            f"{r.params:,}",
        ]
        for r in layers
    ]
    rows.append(["<strong>Total</strong>", "", "", "", f"<strong>{sum(r.params for r in layers):,}</strong>"])
    return _Section(
        "model", "Model", f"Model: {_e(arch)}", _table(["Layer", "Type", "Input shape", "Output shape", "Parameters"], rows, "numbers")
    )


def _timings(history: list[dict], metrics: dict, config: dict) -> _Section | None:
    """One row per epoch (the best one starred) beside the training time, throughput and device."""
    if not history:
        return None
    best_epoch = metrics.get("best_epoch")
    keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds") if k in history[0]]
    rows = []
    for i, e in enumerate(history):
        epoch = e.get("epoch", i + 1)
        mark = ' class="best"' if epoch == best_epoch else ""
        rows.append([f"<span{mark}>{epoch}</span>"] + [_num(e[k], 1 if k == "seconds" else 4) for k in keys])
    timing = _kv(
        [
            ("Training time", _e(duration(metrics.get("train_seconds")))),
            ("Per epoch (mean)", _e(duration(metrics.get("seconds_per_epoch")))),
            (
                "Training throughput",
                _e(f"{metrics['train_images_per_second']:,.0f} images/s") if metrics.get("train_images_per_second") else "—",
            ),
            ("Device", _e(config.get("device", "—"))),
            ("CPU threads", _e(config.get("threads", "—"))),
        ]
    )
    return _Section(
        "timings",
        "Epochs and timings",
        "Epochs and timings",
        f'<div class="grid2 wide-left"><div>{_table(["Epoch"] + keys, rows, "numbers")}</div><div>{timing}</div></div>',
    )


def _configuration(config: dict) -> _Section | None:
    """Every setting of config.json, strings as they are and the rest as JSON."""
    if not config:
        return None
    pairs = ((k, f"<code>{_e(v if isinstance(v, str) else json.dumps(v))}</code>") for k, v in config.items())
    return _Section("config", "Configuration", "Configuration", _kv(pairs))


def _environment(env: dict, note: str) -> _Section:
    """CPU, GPU, platform and package versions, with where they come from."""
    pairs = [
        ("CPU", _e(env.get("cpu", "—"))),
        ("CPU cores", _e(env.get("cpu_cores", "—"))),
        ("CPU kernels", _e(isa_line(env["cpu_isa"]) if isinstance(env.get("cpu_isa"), dict) else "—")),
        ("GPU", _e(env.get("gpu") or "none")),
        ("CUDA", _e(env.get("cuda") or "—")),
        ("Platform", _e(env.get("platform", "—"))),
        ("Python", _e(env.get("python", "—"))),
    ]
    pairs += [(name, _e(v or "not installed")) for name, v in (env.get("versions") or {}).items()]
    return _Section("environment", "Environment", "Environment", f'<p class="note">{_e(note.capitalize())}.</p>' + _kv(pairs))


# --- small pieces of HTML --------------------------------------------------------------------------------


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _pct(x) -> str:
    return "—" if x is None else f"{x:.2%}"


def _num(x, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _table(header, rows, classes=None) -> str:
    # A header may break after an underscore (val_<wbr>accuracy), so a table fits a phone's width.
    head = "".join(f"<th>{_e(h).replace('_', '_<wbr>')}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cls = f' class="{classes}"' if classes else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _kv(pairs) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def _figure(fig, caption: str, alt: str) -> str:
    """``fig`` (a matplotlib figure, or PNG bytes drawn already) embedded with its caption."""
    # 120 dpi: sharp at the page's width on a 2x screen, and a smaller file than the 150 dpi of saved PNGs.
    return f'<figure><img src="{png_data_uri(fig, dpi=120)}" alt="{_e(alt)}"><figcaption>{caption}</figcaption></figure>'


def _bar_cell(value: float) -> str:
    """A number with a small bar behind it, so weak classes stand out in the per-class table."""
    return f'<span class="bar" style="--v:{max(0.0, min(1.0, value)) * 100:.1f}%">{value:.4f}</span>'
