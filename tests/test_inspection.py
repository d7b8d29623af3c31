"""Pictures and reports: every figure is drawn and checked for real content, the HTML report in Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from torch import nn

import fashion_cnn as fc
from conftest import copy_run
from fashion_cnn.cli import main
from fashion_cnn.data import LabeledImages, load_split
from fashion_cnn.data.registry import FASHION_MNIST
from fashion_cnn.inspection import fonts
from fashion_cnn.inspection.analysis import Analysis
from fashion_cnn.models import registry
from fashion_cnn.models.layers import Dense, Flatten
from fashion_cnn.models.summary import layer_table

KO = list(FASHION_MNIST.classes_ko)
EN = list(FASHION_MNIST.classes)


@pytest.fixture
def run_copy(toy_run, tmp_path):
    """A copy of the session's toy run (a complete run directory, as `fashion-cnn train` leaves it), and its data."""
    return copy_run(toy_run.path, tmp_path / "run"), toy_run.data


RGB24 = np.array([1 << 16, 1 << 8, 1], np.uint32)  # an RGB pixel as one number, to count distinct colours


def decoded(path_or_bytes) -> np.ndarray:
    """The image as an RGB array, checked to be a real picture: decodable, not tiny, not one flat colour."""
    from PIL import Image

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[0] >= 100 and pixels.shape[1] >= 100, pixels.shape
    assert pixels.std() > 5, "the picture is blank"
    # Distinct colours, counted in a flat array: np.unique(pixels, axis=0) takes seconds on a page screenshot.
    colours = np.count_nonzero(np.bincount((pixels.astype(np.uint32) @ RGB24).ravel(), minlength=1 << 24))
    assert colours > 20, "the picture has almost no content"
    return pixels


def no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name]


def saved(fig, tmp_path, name="fig.png") -> np.ndarray:
    path = fc.save_figure(fig, tmp_path / name)
    return decoded(path)


def renderer_of(fig):
    """Lay ``fig`` out with the Agg renderer, so extents of boxes and texts can be compared."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def has_hangul_glyph(path: str, ch: str = "가") -> bool:
    from matplotlib.ft2font import FT2Font

    return FT2Font(path).get_char_index(ord(ch)) != 0


# --- fonts -------------------------------------------------------------------------------------------------


def test_the_hangul_font_comes_from_the_pip_package_and_has_the_glyphs():
    path = fonts.hangul_font_path()
    assert path.name == "NanumGothic.ttf" and "koreanize_matplotlib" in str(path)
    assert has_hangul_glyph(str(path)) and has_hangul_glyph(str(fonts.hangul_font_path(bold=True)))
    # The control that makes the checks below meaningful: matplotlib's default font lacks Hangul.
    from matplotlib import font_manager

    assert not has_hangul_glyph(font_manager.findfont("DejaVu Sans"))
    assert fonts.font_for("Bag") is None and fonts.font_for("T-shirt", "가방").get_file() == str(path)


# Run in a fresh interpreter, where fashion_cnn has not been imported yet: the state before is pyplot's own.
SIDE_EFFECTS = """
import json, sys
import matplotlib.pyplot as plt

def state():
    rc = {k: repr(v) for k, v in dict.items(plt.rcParams)}  # the stored values (reading 'backend' may resolve it)
    return rc, plt.get_fignums(), plt.gcf().number

plt.figure()  # a figure of the user's, current in pyplot
before = state()
assert "fashion_cnn" not in sys.modules
import fashion_cnn as fc
import numpy as np
from fashion_cnn.data.registry import FASHION_MNIST
after_import = state()
fig = fc.plot_probabilities(np.full(10, 0.1), list(FASHION_MNIST.classes_ko))  # Korean names: the Hangul font draws them
fc.save_figure(fig, sys.argv[1])
after_use = state()
changes = {
    name: [sorted(k for k in before[0] if s[0][k] != before[0][k]), s[1], s[2]]
    for name, s in (("before", before), ("after import", after_import), ("after a Korean figure", after_use))
}
print(json.dumps(changes))
"""


def test_importing_and_using_fashion_cnn_leaves_matplotlib_state_alone(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SIDE_EFFECTS, str(tmp_path / "probs.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    unchanged = [[], [1], 1]  # no rcParam changed; pyplot still has just the user's figure, still current
    assert json.loads(proc.stdout) == {"before": unchanged, "after import": unchanged, "after a Korean figure": unchanged}
    decoded(tmp_path / "probs.png")


def test_hangul_css_embeds_a_subset_with_exactly_the_needed_glyphs():
    from fontTools.ttLib import TTFont

    css = fonts.hangul_css("Bag 가방 / 바지")
    data = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)\)", css).group(1))
    cmap = TTFont(io.BytesIO(data)).getBestCmap()
    assert {ord(c) for c in "가방바지"} <= set(cmap) and ord("B") not in cmap
    assert "unicode-range: U+AC00-D7A3" in css and len(data) < 20_000
    assert fonts.hangul_css("Bag") == ""


# --- architecture ------------------------------------------------------------------------------------------


def _tiny_mlp(num_classes=10, in_channels=1, image_size=28):
    return nn.Sequential(
        OrderedDict(
            flatten=Flatten(),
            hidden=Dense(in_channels * image_size * image_size, 16, "relu"),
            norm=nn.BatchNorm1d(16),
            out=Dense(16, num_classes, "softmax"),
        )
    )


@pytest.fixture
def extra_architecture(monkeypatch):
    """A second registered architecture with other layer types, so "every architecture" means more than one."""
    monkeypatch.setitem(registry._BUILDERS, "test-tiny-mlp", _tiny_mlp)
    return "test-tiny-mlp"


def _boxes(fig):
    return [p for p in fig.axes[0].patches if (p.get_gid() or "").startswith("layer:")]


@pytest.mark.parametrize("show_shapes", [False, True])
def test_plot_model_draws_one_box_per_layer_for_every_architecture(extra_architecture, show_shapes, tmp_path):
    for name in fc.model_names():
        model = fc.build_model(name)
        rows = layer_table(model)
        fig = fc.plot_model(model, show_shapes=show_shapes)
        assert [p.get_gid() for p in _boxes(fig)] == [f"layer:{r.name}" for r in rows]
        assert len([p for p in fig.axes[0].patches if p.get_gid() == "edge"]) == len(rows) - 1
        texts = [t.get_text() for t in fig.axes[0].texts]
        for r in rows:
            assert r.name in texts and any(t.startswith(r.type) for t in texts)
        out = "(" + ", ".join(str(d) for d in rows[-1].output_shape) + ")"
        assert (out in texts) == show_shapes
        # Boxes go top to bottom, in layer order, without overlapping.
        tops = [p.get_y() + p.get_height() for p in _boxes(fig)]
        bottoms = [p.get_y() for p in _boxes(fig)]
        assert all(b > t for b, t in zip(bottoms, tops[1:]))
        saved(fig, tmp_path, f"{name}.png")


def test_plot_model_text_stays_inside_the_boxes(tmp_path):
    fig = fc.plot_model(fc.build_model(), show_shapes=True)
    renderer = renderer_of(fig)
    boxes = [p.get_window_extent(renderer) for p in _boxes(fig)]
    for t in fig.axes[0].texts[1:]:  # the first is the title, above the boxes
        bb = t.get_window_extent(renderer)
        assert any(b.x0 <= bb.x0 and bb.x1 <= b.x1 and b.y0 <= bb.y0 and bb.y1 <= b.y1 for b in boxes), t.get_text()


@pytest.mark.parametrize("ext, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_plot_model_cli_format_follows_the_extension(tmp_path, capsys, ext, magic):
    out = tmp_path / f"cnn-architecture.{ext}"
    assert main(["plot-model", "--show-shapes", "--dpi", "120", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    assert str(out) in capsys.readouterr().out
    no_temporaries(tmp_path)
    if ext == "png":
        decoded(out)
    if ext == "svg":
        assert "max_pooling2d_1" in out.read_text()


def test_plot_model_from_a_run_and_for_a_named_architecture(run_copy, extra_architecture, tmp_path):
    run, _ = run_copy
    assert main(["plot-model", str(run), "-o", str(tmp_path / "a.png")]) == 0
    assert main(["plot-model", "--model", extra_architecture, "--show-shapes", "-o", str(tmp_path / "b.png")]) == 0
    assert decoded(tmp_path / "a.png").shape != decoded(tmp_path / "b.png").shape


def test_plot_model_refuses_an_unknown_format_before_writing(tmp_path, capsys):
    assert main(["plot-model", "-o", str(tmp_path / "model.gif")]) == 2
    assert "end the file name with one of: .png, .svg, .pdf" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# --- curves ------------------------------------------------------------------------------------------------

HISTORY = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.6, "val_loss": 0.7, "val_accuracy": 0.70, "seconds": 1.0},
    {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "seconds": 1.0},
    {"epoch": 3, "loss": 0.3, "accuracy": 0.9, "val_loss": 0.5, "val_accuracy": 0.84, "seconds": 1.0},
]


@pytest.mark.parametrize("metric", ["loss", "accuracy"])
def test_plot_history_draws_training_and_validation_per_epoch(metric, tmp_path):
    fig = fc.plot_history(fc.History(HISTORY), metric)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines[f"training {metric}"].get_ydata()) == [e[metric] for e in HISTORY]
    assert list(lines[f"validation {metric}"].get_ydata()) == [e[f"val_{metric}"] for e in HISTORY]
    assert list(lines[f"training {metric}"].get_xdata()) == [1, 2, 3]
    best = next(line for label, line in lines.items() if label.startswith("best epoch"))
    assert list(best.get_xdata()) == [2, 2]  # lowest val_loss
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == metric
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {f"training {metric}", f"validation {metric}"}
    saved(fig, tmp_path)


def test_train_writes_curves_report_and_environment(toy_run):
    run = toy_run.path
    for name in ("loss.png", "accuracy.png"):
        decoded(run / name)
    env = json.loads((run / "environment.json").read_text())
    assert env["versions"]["torch"] and env["cpu"] and env["cpu_cores"] >= 1
    page = (run / "report.html").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{metrics['test']['accuracy']:.2%}" in page
    for name in ("loss.png", "accuracy.png"):  # the report shows the very pictures train wrote (drawn once)
        assert base64.b64encode((run / name).read_bytes()).decode("ascii") in page
    no_temporaries(run)


def test_plot_history_cli_redraws_the_curves(run_copy, capsys):
    run, _ = run_copy
    (run / "loss.png").unlink()
    assert main(["plot-history", str(run)]) == 0
    decoded(run / "loss.png")
    assert main(["plot-history", str(run), "-o", str(run / "elsewhere"), "--dpi", "80"]) == 0
    assert {p.name for p in (run / "elsewhere").iterdir()} == {"loss.png", "accuracy.png"}


def test_plot_history_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["plot-history", str(tmp_path)]) == 2
    assert "has no history.json" in capsys.readouterr().err


# --- images ------------------------------------------------------------------------------------------------


def test_show_writes_the_image_of_a_split(toy_dir, tmp_path, capsys):
    out = tmp_path / "val0.png"
    assert main(["show", "--data-dir", str(toy_dir), "--split", "val", "--index", "0", "-o", str(out)]) == 0
    pixels = decoded(out)
    val = load_split("val", data_dir=toy_dir)
    fig = fc.show_image(val.images[0], "val[0]")
    assert np.array_equal(fig.axes[0].images[0].get_array(), val.images[0])
    assert fig.axes[0].images[0].get_cmap().name == "gray_r"
    assert pixels.shape[0] > 200


def test_show_default_file_name_and_out_of_range_index(toy_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["show", "--data-dir", str(toy_dir), "--split", "test", "--index", "7", "--cmap", "viridis"]) == 0
    decoded(tmp_path / "test-7.png")
    assert main(["show", "--data-dir", str(toy_dir), "--index", "100000"]) == 2
    assert "--index 100000 is out of range" in capsys.readouterr().err
    assert main(["show", "--data-dir", str(toy_dir), "--cmap", "no-such-map"]) == 2
    assert "unknown colour map 'no-such-map'" in capsys.readouterr().err
    assert main(["show", "--data-dir", str(toy_dir), "--grid", "5by5"]) == 2
    assert "write it like 5x5" in capsys.readouterr().err


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_show_grid_is_a_labelled_gallery(toy_dir, tmp_path, lang):
    out = tmp_path / "grid.png"
    assert main(["show", "--data-dir", str(toy_dir), "--grid", "5x5", "--index", "3", "--lang", lang, "-o", str(out)]) == 0
    decoded(out)
    val = load_split("val", data_dir=toy_dir)
    names = KO if lang == "ko" else EN
    captions = [names[int(label)] for label in val.labels[3:28]]
    fig = fc.plot_images(val.images[3:28], captions, 5, 5)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 25
    assert [ax.texts[0].get_text() for ax in image_axes] == captions
    if lang == "ko":
        from matplotlib import font_manager

        assert all(has_hangul_glyph(font_manager.findfont(ax.texts[0].get_fontproperties())) for ax in image_axes)


def test_gallery_captions_do_not_overlap_the_next_row():
    images = np.random.default_rng(0).integers(0, 255, (12, 28, 28), dtype=np.uint8)
    fig = fc.plot_images(images, ["앵클 부츠 100%\ntrue: 스니커즈 <1%"] * 12, rows=2, cols=6)
    r = renderer_of(fig)
    first_row_caption = fig.axes[0].texts[0].get_window_extent(r)
    second_row_image = fig.axes[6].get_window_extent(r)
    assert first_row_caption.y0 > second_row_image.y1


# --- probabilities -----------------------------------------------------------------------------------------


def test_probability_bars_with_korean_names_render_in_a_hangul_font(tmp_path):
    from matplotlib import font_manager
    from matplotlib.patches import Rectangle

    probs = np.array([0.01, 0.0, 0.02, 0.0, 0.0, 0.0, 0.05, 0.0, 0.9, 0.02])
    fig = fc.plot_probabilities(probs, KO, true=8)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 10 and np.allclose([b.get_height() for b in bars], probs)
    labels = ax.get_xticklabels()
    assert [t.get_text() for t in labels] == KO
    for t in labels + [ax.title]:
        path = font_manager.findfont(t.get_fontproperties())
        assert "DejaVu" not in path and has_hangul_glyph(path), path
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved(fig, tmp_path)
    assert not [w for w in caught if "missing from" in str(w.message)], [str(w.message) for w in caught]


def test_probability_bars_colour_the_prediction_and_the_true_class(tmp_path):
    probs = np.array([0.7, 0.2] + [0.0125] * 8)
    bars = fc.plot_probabilities(probs, EN, true=1).axes[0].patches
    colours = [b.get_facecolor() for b in bars]
    assert colours[0] != colours[1] != colours[2] and colours[2] == colours[9]
    with pytest.raises(fc.FashionCNNError, match="10 probabilities but 9 class names"):
        fc.plot_probabilities(probs, EN[:9])


def test_predict_plot_cli(run_copy, tmp_path, capsys):
    run, data = run_copy
    out = tmp_path / "probs.png"
    args = ["predict", str(run), "--data-dir", str(data), "--split", "val", "--index", "0", "--lang", "ko", "--plot", str(out), "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["predicted"]["name"] in KO  # stdout stays pure JSON
    assert str(out) in captured.err
    decoded(out)


# --- analysis: per-class table, confusion matrix, top losses -----------------------------------------------


def _analysis(n=200, classes=10, seed=0) -> Analysis:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += 2  # mostly right, some confidently wrong
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    images = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
    return Analysis(LabeledImages(images, labels.astype(np.int64)), probs, tuple(EN), "test")


def test_per_class_numbers_agree_with_the_confusion_matrix():
    a = _analysis()
    cm = a.confusion
    assert cm.sum() == 200 and np.trace(cm) / 200 == pytest.approx(a.accuracy)
    for i, row in enumerate(a.per_class):
        assert row["precision"] == pytest.approx(cm[i, i] / cm[:, i].sum())
        assert row["recall"] == pytest.approx(cm[i, i] / cm[i].sum())
        assert row["f1"] == pytest.approx(2 * row["precision"] * row["recall"] / (row["precision"] + row["recall"]))
        assert row["support"] == cm[i].sum()
    text = a.report_text()
    assert all(name in text for name in EN) and "macro avg" in text and "weighted avg" in text


def test_top_losses_are_the_most_confidently_wrong_first():
    a = _analysis()
    idx = a.top_losses(10)
    p_true = a.probs[np.arange(200), a.labels]
    assert list(idx) == list(np.argsort(p_true)[:10])
    assert all(a.predicted[i] != a.labels[i] for i in idx)


def test_confusion_matrix_figure_has_a_cell_and_a_count_per_pair(tmp_path):
    a = _analysis()
    fig = fc.plot_confusion_matrix(a.confusion, KO)
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (10, 10)
    counts = [int(t.get_text().replace(",", "")) for t in ax.texts]
    assert counts == a.confusion.ravel().tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == KO
    saved(fig, tmp_path)


def test_top_losses_figure_shows_predicted_and_true(tmp_path):
    a = _analysis()
    fig = fc.plot_top_losses(a, 6)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 6
    for ax, i in zip(image_axes, a.top_losses(6)):
        caption = ax.texts[0].get_text()
        assert caption.startswith(EN[a.predicted[i]]) and f"true: {EN[a.labels[i]]}" in caption
        assert np.array_equal(ax.images[0].get_array(), a.data.images[i])
    saved(fig, tmp_path)


def test_evaluate_report_and_top_losses_cli(run_copy, capsys):
    run, data = run_copy
    assert main(["evaluate", str(run), "--data-dir", str(data), "--report", "--top-losses", "5"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "macro avg" in out and all(name in out for name in EN)
    decoded(run / "confusion.png")
    decoded(run / "top-losses.png")
    no_temporaries(run)


def test_evaluate_report_json_and_out_dir(run_copy, tmp_path, capsys):
    run, data = run_copy
    out_dir = tmp_path / "pictures"
    assert (
        main(["evaluate", str(run), "--data-dir", str(data), "--report", "--top-losses", "3", "-o", str(out_dir), "--json", "--lang", "ko"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert [r["class"] for r in result["per_class"]] == KO
    assert np.array(result["confusion"]).sum() == result["images"] == 100
    assert len(result["top_losses"]) == 3 and result["top_losses"][0]["loss"] >= result["top_losses"][-1]["loss"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["confusion.png", "top-losses.png"]


def test_evaluate_of_a_model_file_writes_into_the_current_folder(run_copy, tmp_path, monkeypatch, capsys):
    run, data = run_copy
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(run / "best.safetensors"), "--data-dir", str(data), "--top-losses", "2"]) == 0
    decoded(tmp_path / "top-losses.png")
    assert main(["evaluate", str(run), "--data-dir", str(data), "--top-losses", "-1"]) == 2
    assert "--top-losses must be from 0 to 256 (a picture of more shows nothing), got -1" in capsys.readouterr().err


# --- the HTML report ---------------------------------------------------------------------------------------


def test_report_is_self_contained(run_copy, tmp_path, capsys):
    run, data = run_copy
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--data-dir", str(data), "-o", str(out)]) == 0
    page = out.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "<link" not in page and "url(http" not in page
    # loss, accuracy, confusion matrix, reliability, top losses; inside the model: filters, feature maps, Grad-CAM,
    # embedding map
    assert page.count('src="data:image/png;base64,') == 9
    for name in ("Configuration", "Environment", "Top losses", "Learning curves", "Calibration", "Model: tutorial-cnn", "333,526"):
        assert name in page
    assert "티셔츠" in page and "@font-face" in page
    for uri in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        decoded(base64.b64decode(uri))


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_report_opens_in_chromium_with_the_test_accuracy(toy_run, chromium_browser, tmp_path):
    run = toy_run.path
    metrics = json.loads((run / "metrics.json").read_text())
    page = chromium_browser.new_page(viewport={"width": 1280, "height": 900})
    outside = []

    def only_local(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    try:
        page.goto((run / "report.html").as_uri())
        page.evaluate("document.fonts.ready.then(() => true)")
        shot = page.screenshot(full_page=True)
        text = page.inner_text("body")
        headline = page.inner_text("#test-accuracy")
        broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
        images = page.evaluate("document.images.length")
        hangul_loaded = page.evaluate("document.fonts.check(\"15px 'fashion-cnn-hangul'\", '티셔츠')")
    finally:
        page.close()
    assert not outside
    pixels = decoded(shot)
    assert pixels.shape[0] > 2000  # the whole page, not the first screen
    assert headline == f"{metrics['test']['accuracy']:.2%}" and headline in text
    assert f"{metrics['val']['accuracy']:.2%}" in text
    assert images == 9 and broken == 0  # the 5 of the tutorial's results and calibration, the 4 of "Inside the model"
    assert hangul_loaded


def test_python_api_returns_figures_that_pyplot_does_not_keep():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    before = plt.get_fignums()
    figs = [
        fc.plot_model(fc.build_model()),
        fc.plot_history(HISTORY),
        fc.show_image(np.zeros((28, 28), np.uint8)),
        fc.plot_probabilities(np.full(10, 0.1), EN),
        fc.plot_confusion_matrix(np.eye(10, dtype=int), EN),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert plt.get_fignums() == before


@pytest.mark.realdata
def test_the_tutorials_handbag_is_val_index_0(real_dir, tmp_path, capsys):
    out = tmp_path / "handbag.png"
    assert main(["show", "--data-dir", str(real_dir), "-o", str(out)]) == 0
    decoded(out)
    val = load_split("val", data_dir=real_dir)
    assert EN[int(val.labels[0])] == "Bag"
