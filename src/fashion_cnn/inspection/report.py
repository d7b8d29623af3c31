"""One self-contained HTML page per run: headline metrics, curves, confusion matrix, per-class table, top
losses, the model, timings, configuration and environment. Images are embedded as base64 and the Korean
glyphs as a small font subset, so the file opens anywhere without a network.

    fashion-cnn report runs/tutorial --data-dir ../shared/data/fashion-mnist    # runs/tutorial/report.html

``fashion-cnn train`` writes it at the end of every run.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path

from ..errors import FashionCNNError
from ..files import atomic_write_text
from ..rundir import CONFIG, ENVIRONMENT, HISTORY_JSON, METRICS, REPORT
from ..version import __version__
from .analysis import Analysis
from .figures import png_data_uri
from .fonts import CSS_FAMILY, hangul_css

TOP_LOSSES = 16


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError) as e:
        raise FashionCNNError(f"{path} is not readable JSON ({e}); the run directory is damaged, retrain or restore it") from None


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _pct(x) -> str:
    return "—" if x is None else f"{x:.2%}"


def _num(x, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _when(path: Path) -> str | None:
    if not path.is_file():
        return None
    return dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def _table(header, rows, classes=None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cls = f' class="{classes}"' if classes else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _kv(pairs) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def _figure(fig, caption: str, alt: str) -> str:
    # 120 dpi: sharp at the page's width on a 2x screen, and a smaller file than the 150 dpi of saved PNGs.
    return f'<figure><img src="{png_data_uri(fig, dpi=120)}" alt="{_e(alt)}"><figcaption>{caption}</figcaption></figure>'


def _bar_cell(value: float) -> str:
    """A number with a small bar behind it, so weak classes stand out in the per-class table."""
    return f'<span class="bar" style="--v:{max(0.0, min(1.0, value)) * 100:.1f}%">{value:.4f}</span>'


def build_report(
    run_dir: str | os.PathLike,
    analysis: Analysis | None = None,
    *,
    model=None,
    environment: dict | None = None,
    top_losses: int = TOP_LOSSES,
    korean_names=None,
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
    """
    from ..environment import environment as this_environment
    from ..models.files import load_model
    from ..models.summary import layer_table
    from .plots import plot_confusion_matrix, plot_history, plot_top_losses

    run = Path(run_dir)
    if not run.is_dir():
        raise FashionCNNError(f"{run} is not a folder; pass a run directory written by 'fashion-cnn train'")
    config = _read_json(run / CONFIG) or {}
    history = _read_json(run / HISTORY_JSON) or []
    metrics = _read_json(run / METRICS) or {}
    if not (config or history):
        raise FashionCNNError(f"{run} has neither {CONFIG} nor {HISTORY_JSON}; pass a run directory written by 'fashion-cnn train'")
    model = model if model is not None else load_model(run)
    meta = getattr(model, "meta", {})
    env_note = "recorded when the run was trained"
    if environment is None:
        environment = _read_json(run / ENVIRONMENT)
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
    rows = layer_table(model)
    total_params = sum(r.params for r in rows)
    epochs_run = metrics.get("epochs_run", len(history))
    best_epoch = metrics.get("best_epoch")
    sections, texts = [], []

    # Headline: the numbers a reader wants first.
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
        ("Training time", _duration(metrics.get("train_seconds")), f"{_num(metrics.get('seconds_per_epoch'), 1)} s per epoch", ""),
        ("Parameters", f"{total_params:,}", f"{len(rows)} layers", ""),
    ]
    card_html = "".join(
        f'<div class="card {cls}"><div class="label">{_e(label)}</div><div class="value">{value}</div><div class="note">{_e(note)}</div></div>'
        for label, value, note, cls in cards
    )
    if not metrics:
        card_html += (
            '<p class="warn">metrics.json is missing: training did not finish, so the final validation and test numbers are not known.</p>'
        )

    if history:
        sections.append(
            (
                "curves",
                "Learning curves",
                '<div class="grid2">'
                + _figure(plot_history(history, "loss"), "Training and validation loss per epoch.", "loss per epoch")
                + _figure(plot_history(history, "accuracy"), "Training and validation accuracy per epoch.", "accuracy per epoch")
                + "</div>",
            )
        )

    if analysis is not None:
        names = list(analysis.names)
        ko = list(korean_names) if korean_names and list(korean_names) != names and len(korean_names) == len(names) else None
        header = ["Class"] + (["한국어"] if ko else []) + ["Precision", "Recall", "F1", "Images"]
        worst = min(range(len(names)), key=lambda i: analysis.per_class[i]["f1"])
        table_rows = []
        for i, r in enumerate(analysis.per_class):
            name = f"<strong>{_e(r['class'])}</strong>" if i == worst else _e(r["class"])
            table_rows.append(
                [name]
                + ([_e(ko[i])] if ko else [])
                + [_bar_cell(r["precision"]), _bar_cell(r["recall"]), _bar_cell(r["f1"]), f"{r['support']:,}"]
            )
        for avg_name, avg in analysis.averages.items():
            table_rows.append(
                [f"<em>{avg_name} average</em>"]
                + ([""] if ko else [])
                + [f"{avg['precision']:.4f}", f"{avg['recall']:.4f}", f"{avg['f1']:.4f}", f"{avg['support']:,}"]
            )
        texts += header + names + (ko or [])
        per_class = _table(header, table_rows, "numbers compact") + (
            f'<p class="note">Lowest F1: <strong>{_e(names[worst])}</strong> ({analysis.per_class[worst]["f1"]:.4f}). '
            "Precision: of the images predicted as the class, the share that are; recall: of the class's images, the share found.</p>"
        )
        confusion = _figure(
            plot_confusion_matrix(analysis.confusion, names),
            f"Rows: true class; columns: predicted class; {len(analysis.labels):,} {_e(analysis.split)} images.",
            "confusion matrix",
        )
        sections.append(
            (
                "errors",
                f"Where it goes wrong ({_e(analysis.split)} split)",
                f'<div class="grid2 errors">{confusion}<div>{per_class}</div></div>',
            )
        )
        if top_losses > 0 and len(analysis.labels):
            n = min(top_losses, len(analysis.labels))
            fig = plot_top_losses(analysis, n)
            sections.append(
                (
                    "top-losses",
                    "Top losses",
                    _figure(
                        fig,
                        f"The {n} {_e(analysis.split)} images with the highest loss, most confidently wrong first: "
                        "predicted class and probability, then the true class and the probability the model gave it.",
                        "top losses",
                    ),
                )
            )

    layer_rows = [
        [
            f"<code>{_e(r.name)}</code>",
            _e(r.type),
            f"<code>{_e(r.input_shape)}</code>",
            f"<code>{_e(r.output_shape)}</code>",
            f"{r.params:,}",
        ]
        for r in rows
    ]
    layer_rows.append(["<strong>Total</strong>", "", "", "", f"<strong>{total_params:,}</strong>"])
    sections.append(
        ("model", f"Model: {_e(arch)}", _table(["Layer", "Type", "Input shape", "Output shape", "Parameters"], layer_rows, "numbers"))
    )

    if history:
        keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds") if k in history[0]]
        hist_rows = []
        for i, e in enumerate(history):
            epoch = e.get("epoch", i + 1)
            mark = ' class="best"' if epoch == best_epoch else ""
            hist_rows.append([f"<span{mark}>{epoch}</span>"] + [_num(e[k], 1 if k == "seconds" else 4) for k in keys])
        timing = _kv(
            [
                ("Training time", _e(_duration(metrics.get("train_seconds")))),
                ("Per epoch (mean)", _e(_duration(metrics.get("seconds_per_epoch")))),
                (
                    "Training throughput",
                    _e(f"{metrics['train_images_per_second']:,.0f} images/s") if metrics.get("train_images_per_second") else "—",
                ),
                ("Device", _e(config.get("device", "—"))),
                ("CPU threads", _e(config.get("threads", "—"))),
            ]
        )
        sections.append(
            (
                "timings",
                "Epochs and timings",
                f'<div class="grid2 wide-left"><div>{_table(["Epoch"] + keys, hist_rows, "numbers")}</div><div>{timing}</div></div>',
            )
        )

    if config:
        sections.append(
            (
                "config",
                "Configuration",
                _kv((k, f"<code>{_e(v if isinstance(v, str) else json.dumps(v))}</code>") for k, v in config.items()),
            )
        )

    env = environment or {}
    env_pairs = [
        ("CPU", _e(env.get("cpu", "—"))),
        ("CPU cores", _e(env.get("cpu_cores", "—"))),
        ("GPU", _e(env.get("gpu") or "none")),
        ("CUDA", _e(env.get("cuda") or "—")),
        ("Platform", _e(env.get("platform", "—"))),
        ("Python", _e(env.get("python", "—"))),
    ]
    env_pairs += [(name, _e(v or "not installed")) for name, v in (env.get("versions") or {}).items()]
    sections.append(("environment", "Environment", f'<p class="note">{_e(env_note.capitalize())}.</p>' + _kv(env_pairs)))

    finished = _when(run / METRICS) or _when(run / HISTORY_JSON)
    subtitle = f"{arch} on {dataset}" + (f" · finished {finished}" if finished else "")
    texts += [run.name, subtitle]
    nav = "".join(f'<a href="#{sid}">{_e(title.split(" (")[0].split(":")[0])}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{title}</h2>{content}</section>' for sid, title, content in sections)
    made = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="fashion-cnn {_e(__version__)}">
<title>{_e(run.name)} · fashion-cnn report</title>
<style>
{hangul_css("".join(texts))}{CSS}
</style>
</head>
<body>
<header class="top"><div class="wrap">
<div class="eyebrow">fashion-cnn training report</div>
<h1>{_e(run.name)}</h1>
<p class="subtitle">{_e(subtitle)}</p>
<nav>{nav}</nav>
</div></header>
<main class="wrap">
<section class="cards">{card_html}</section>
{body}
</main>
<footer class="wrap">Made by fashion-cnn {_e(__version__)} on {_e(made)} from <code>{_e(run)}</code>. This page is self-contained: it needs no network.</footer>
</body>
</html>
"""


def write_report(run_dir: str | os.PathLike, path: str | os.PathLike | None = None, analysis: Analysis | None = None, **kwargs) -> Path:
    """Write ``build_report(run_dir, analysis, ...)`` atomically to ``path`` (default ``run_dir/report.html``).

    Example:
        >>> write_report("runs/tutorial", analysis=analyze(model, test))  # doctest: +SKIP
        PosixPath('runs/tutorial/report.html')
    """
    path = Path(path) if path is not None else Path(run_dir) / REPORT
    page = build_report(run_dir, analysis, **kwargs)
    try:
        atomic_write_text(path, page)
    except OSError as e:
        raise FashionCNNError(f"cannot write {path} ({e.strerror or e}); choose a writable location with -o") from None
    return path


CSS = f"""
:root {{ --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --accent:#2563eb; --card:#ffffff; }}
* {{ box-sizing: border-box; }}
body {{ margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.55 '{CSS_FAMILY}', system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "DejaVu Sans", sans-serif; }}
.wrap {{ max-width: 1160px; margin: 0 auto; padding: 0 28px; }}
header.top {{ background: linear-gradient(135deg, #0f172a 0%, #1e3a8a 100%); color: white; padding: 34px 0 0; }}
header.top h1 {{ margin: 2px 0 4px; font-size: 30px; letter-spacing: -0.01em; }}
.eyebrow {{ text-transform: uppercase; letter-spacing: .12em; font-size: 12px; color: #93c5fd; font-weight: 600; }}
.subtitle {{ margin: 0 0 22px; color: #cbd5e1; }}
nav {{ display: flex; flex-wrap: wrap; gap: 4px; }}
nav a {{ color: #e2e8f0; text-decoration: none; font-size: 13px; padding: 8px 12px; border-radius: 8px 8px 0 0; }}
nav a:hover {{ background: rgba(255,255,255,.1); }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 14px; margin: 26px 0 8px; }}
.card {{ background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 16px 18px; box-shadow: 0 1px 2px rgba(15,23,42,.04); }}
.card .label {{ font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); font-weight: 600; }}
.card .value {{ font-size: 28px; font-weight: 700; margin: 2px 0; font-variant-numeric: tabular-nums; }}
.card.primary {{ border-color: #bfdbfe; background: linear-gradient(180deg, #eff6ff, #ffffff); }}
.card.primary .value {{ color: var(--accent); }}
.card .note {{ font-size: 13px; color: var(--muted); }}
section {{ margin: 34px 0; }}
section h2 {{ font-size: 20px; margin: 0 0 14px; padding-bottom: 8px; border-bottom: 1px solid var(--line); }}
.grid2 {{ display: grid; grid-template-columns: 1fr 1fr; gap: 20px; align-items: start; }}
.grid2.wide-left {{ grid-template-columns: 1.15fr 1fr; }}
.grid2.errors {{ grid-template-columns: 1.3fr 1fr; }}
.grid2 > * {{ min-width: 0; }}
@media (max-width: 900px) {{ .grid2, .grid2.wide-left, .grid2.errors {{ grid-template-columns: 1fr; }} }}
figure {{ margin: 0; background: white; border: 1px solid var(--line); border-radius: 12px; padding: 12px; }}
figure img {{ width: 100%; height: auto; display: block; }}
figcaption {{ font-size: 13px; color: var(--muted); margin-top: 8px; }}
table {{ border-collapse: collapse; width: 100%; background: white; border: 1px solid var(--line); border-radius: 12px; overflow: hidden; font-size: 14px; }}
th, td {{ padding: 7px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }}
thead th {{ background: #f1f5f9; font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: #475569; }}
table.numbers td:not(:first-child) {{ font-variant-numeric: tabular-nums; }}
table.compact {{ font-size: 13px; }}
table.compact th, table.compact td {{ padding: 6px 7px; white-space: nowrap; }}
table.compact .bar {{ min-width: 0; width: 100%; }}
table.kv th {{ width: 34%; font-weight: 600; color: #334155; background: #f8fafc; }}
tbody tr:last-child td, tbody tr:last-child th {{ border-bottom: none; }}
.scroll {{ overflow-x: auto; border-radius: 12px; }}
table.kv td {{ overflow-wrap: anywhere; }}
table.numbers code {{ white-space: nowrap; }}
code {{ font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }}
.bar {{ display: inline-block; min-width: 78px; padding: 0 6px; border-radius: 4px;
  background: linear-gradient(90deg, #dbeafe var(--v), transparent var(--v)); }}
.best {{ font-weight: 700; color: var(--accent); }}
.best::after {{ content: " ★"; }}
.note {{ color: var(--muted); font-size: 13px; }}
.warn {{ grid-column: 1 / -1; background: #fef3c7; border: 1px solid #fcd34d; padding: 10px 14px; border-radius: 10px; margin: 0; }}
footer {{ color: var(--muted); font-size: 13px; padding-top: 10px; padding-bottom: 40px; border-top: 1px solid var(--line); }}
"""
