"""Inside the model (issue 13): layer outputs, filters, Grad-CAM, saliency and the embedding map, checked for
content (against values computed by hand, a model whose answer depends on one region, finite differences,
class separation), and the commands that draw them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fashion_cnn as fc
from fashion_cnn.cli import main
from fashion_cnn.data import LabeledImages
from fashion_cnn.inspection.internals import unfused

# -- layer outputs and filters -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    return fc.build_model().eval()


def digits(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_layer_outputs_equal_the_layers_computed_by_hand(model):
    images = digits()
    got = fc.layer_outputs(model, images, ["conv2d", "max_pooling2d", "conv2d_1", "dense"])
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    c1, c2 = model.conv2d.conv, model.conv2d_1.conv
    conv1 = F.relu(F.conv2d(x, c1.weight, c1.bias, padding=1))  # Keras' Conv2D(32, 3, relu, same)
    pool1 = F.max_pool2d(conv1, 2)
    conv2 = F.relu(F.conv2d(pool1, c2.weight, c2.bias, padding=1))
    flat = F.max_pool2d(conv2, 2).permute(0, 2, 3, 1).flatten(1)  # Keras' channels-last Flatten
    dense = F.relu(F.linear(flat, model.dense.linear.weight, model.dense.linear.bias))
    for name, want in (("conv2d", conv1), ("max_pooling2d", pool1), ("conv2d_1", conv2), ("dense", dense)):
        assert got[name].shape == tuple(want.shape)
        np.testing.assert_allclose(got[name], want.detach().numpy(), rtol=1e-5, atol=1e-5, err_msg=name)
    assert (got["conv2d"] >= 0).all() and (got["conv2d"] == 0).any(), "the conv layer's output includes its ReLU"


def test_layer_outputs_leave_the_model_as_it_was(model):
    model.train()
    try:
        before = fc.predict_proba(model, digits(2))
        fc.layer_outputs(model, digits(2), "conv2d")
        assert model.training and model.fuse
        np.testing.assert_array_equal(fc.predict_proba(model, digits(2)), before)
    finally:
        model.eval()


def test_a_wrong_layer_name_lists_the_layers(model):
    with pytest.raises(fc.FashionCNNError, match=r"no layer 'conv3'; its layers are: conv2d, max_pooling2d, conv2d_1, .*dense_1$"):
        fc.layer_outputs(model, digits(1), ["conv3"])
    with pytest.raises(fc.FashionCNNError, match="layer 'dense' is not a convolution; the convolution layers are: conv2d, conv2d_1"):
        fc.conv_filters(model, "dense")


def cells(fig, kind: str) -> list[np.ndarray]:
    """The cells of the grid drawn by ``plot_filters`` / ``plot_feature_maps``, read back from the picture's
    pixels: the grid is one image of tiles with gaps of NaN (drawn as the background) between them."""
    ax = next(ax for ax in fig.axes if (ax.get_gid() or "").startswith(kind + ":"))
    _, count, cols = ax.get_gid().split(":")
    drawn = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    filled_rows = np.flatnonzero(~np.isnan(drawn).all(1))
    filled_cols = np.flatnonzero(~np.isnan(drawn).all(0))
    h = int(np.argmax(np.diff(filled_rows) > 1)) + 1 if np.any(np.diff(filled_rows) > 1) else len(filled_rows)
    w = int(np.argmax(np.diff(filled_cols) > 1)) + 1 if np.any(np.diff(filled_cols) > 1) else len(filled_cols)
    gap_h = int(np.diff(filled_rows)[h - 1]) - 1 if len(filled_rows) > h else 0
    gap_w = int(np.diff(filled_cols)[w - 1]) - 1 if len(filled_cols) > w else 0
    found = []
    for top in range(0, drawn.shape[0], h + gap_h):
        for left in range(0, drawn.shape[1], w + gap_w):
            tile = drawn[top : top + h, left : left + w]
            if not np.isnan(tile).all():
                found.append(tile)
    assert len(found) == int(count), (len(found), count)
    return found


def test_the_filter_grid_has_one_cell_per_filter_showing_its_weights(model):
    kernel, bias = fc.conv_filters(model)
    assert kernel.shape == (32, 1, 3, 3) and bias.shape == (32,)
    np.testing.assert_array_equal(kernel, model.conv2d.conv.weight.detach().numpy())
    drawn = cells(fc.plot_filters(kernel), "filters")
    assert len(drawn) == 32
    for k in range(32):
        np.testing.assert_array_equal(drawn[k], kernel[k, 0])
    second, _ = fc.conv_filters(model, "conv2d_1")
    drawn = cells(fc.plot_filters(second, input_channel=5), "filters")
    assert len(drawn) == 64
    np.testing.assert_array_equal(drawn[63], second[63, 5])


def test_the_weight_histograms_legend_sits_above_the_bars(model):
    """A fixed place, drawn above the axes: matplotlib's loc="best" searched every spot against every bar and,
    on a busy machine, warned that it took over a second (the suite treats warnings as errors)."""
    kernel, _ = fc.conv_filters(model)
    fig = fc.plot_filters({"trained": kernel, "untrained": np.zeros_like(kernel)})
    fig.canvas.draw()
    hist = fig.axes[-1]
    legend = hist.get_legend()
    assert [t.get_text().split(":")[0] for t in legend.get_texts()] == ["trained", "untrained"]
    box, axes = legend.get_window_extent(), hist.get_window_extent()
    assert box.y0 >= axes.y1 - 1 and box.x0 >= axes.x0 - 1  # above the plotting area, from its left edge


def test_feature_map_grid_draws_each_map_of_the_layer(model):
    maps = fc.layer_outputs(model, digits(1), "conv2d_1")["conv2d_1"][0]
    fig = fc.plot_feature_maps(maps)
    assert [ax.get_gid() for ax in fig.axes] == ["maps:64:8"]  # the book's 8×8 grid
    drawn = cells(fig, "maps")
    for k in (0, 40, 63):  # each map in its own colour range: the same picture, scaled to 0..1
        m = maps[k]
        want = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else np.zeros_like(m)
        np.testing.assert_allclose(drawn[k], want, atol=1e-6)
    with pytest.raises(fc.FashionCNNError, match="choose a convolution or pooling layer"):
        fc.plot_feature_maps(fc.layer_outputs(model, digits(1), "dense")["dense"][0])


# -- Grad-CAM and saliency ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def region_model():
    """A small CNN trained on pictures whose class is where a bright square lies: class k when it is in quadrant
    k (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right); the rest of the picture is noise."""
    rng = np.random.default_rng(0)

    def pictures(n):
        x = rng.integers(0, 100, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 4, n)
        for i, k in enumerate(y):
            r, c = (k // 2) * 14 + rng.integers(2, 6), (k % 2) * 14 + rng.integers(2, 6)
            x[i, r : r + 6, c : c + 6] = 255
        return x, y

    torch.manual_seed(0)
    net = fc.build_model(num_classes=4, filters=(8, 16), hidden=16)
    fc.fit(net, LabeledImages(*pictures(1200)), epochs=3, batch_size=32, seed=0, verbose=False)
    test = LabeledImages(*pictures(24))
    assert fc.evaluate(net, test)["accuracy"] > 0.95
    return net, test


def test_gradcam_of_a_model_that_looks_at_one_region_peaks_in_that_region(region_model):
    net, test = region_model
    for image, k in zip(test.images, test.labels):
        quadrant = np.zeros((28, 28), bool)
        quadrant[(k // 2) * 14 : (k // 2) * 14 + 14, (k % 2) * 14 : (k % 2) * 14 + 14] = True
        cam = fc.gradcam(net, image, target=int(k))
        assert cam.target == k and cam.heatmap.shape == (28, 28) and cam.heatmap.max() == pytest.approx(1.0)
        peak = np.unravel_index(cam.heatmap.argmax(), cam.heatmap.shape)
        assert quadrant[peak], f"Grad-CAM for class {k} peaks at {peak}, outside the quadrant that decides it"
        assert cam.heatmap[quadrant].mean() > 1.5 * cam.heatmap[~quadrant].mean()
        s = fc.saliency(net, image, target=int(k))
        assert s.heatmap[quadrant].mean() > 1.5 * s.heatmap[~quadrant].mean()


def test_saliency_is_the_gradient_a_finite_difference_gives(model):
    image = digits(1, seed=5)[0]
    s = fc.saliency(model, image, target=4)
    with unfused(model):
        double = type(model)(*[m for m in model]).double()  # the same layers (shared weights), in float64
        double.fuse = False
        x = torch.from_numpy(image).double().div(255)[None, None]

        def score(v):
            return double(v)[0, 4].item()

        pixels = list(zip(*np.unravel_index(np.argsort(s.heatmap, axis=None)[-12:], s.heatmap.shape)))
        numeric = []
        for r, c in pixels:
            step = torch.zeros_like(x)
            step[0, 0, r, c] = 1e-6
            numeric.append(abs(score(x + step) - score(x - step)) / 2e-6)
    model.float()
    numeric = np.array(numeric) / max(numeric)
    ours = np.array([s.heatmap[r, c] for r, c in pixels]) / max(s.heatmap[r, c] for r, c in pixels)
    np.testing.assert_allclose(ours, numeric, atol=1e-3)


def test_gradcam_for_another_class_and_bad_classes(model):
    image = digits(1)[0]
    cam = fc.gradcam(model, image, target=7)
    assert cam.target == 7 and cam.layer == "conv2d_1"
    assert fc.gradcam(model, image, layer="conv2d").layer == "conv2d"
    with pytest.raises(fc.FashionCNNError, match=r"class 10 is out of range: the model has 10 classes \(0 to 9\)"):
        fc.gradcam(model, image, target=10)
    with pytest.raises(fc.FashionCNNError, match="does not output feature maps"):
        fc.gradcam(model, image, layer="dense")
    assert all(p.grad is None for p in model.parameters()), "explaining must not leave gradients on the weights"


# -- the embedding map --------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_the_embedding_map_has_one_point_per_image_and_separates_the_classes(real_model, real_dir):
    from fashion_cnn.cli.embedding import class_separation

    model = fc.load_model(real_model)
    test = fc.load_dataset("fashion-mnist", real_dir).test
    images, labels = test.images[:1000], test.labels[:1000]
    features = fc.embeddings(model, images)
    assert features.shape == (1000, 100)
    points = fc.project_2d(features, "tsne")
    fig = fc.plot_embedding(points, labels, fc.DATASETS["fashion-mnist"].class_names("ko"), images=images)
    assert len(fig.axes[0].collections[0].get_offsets()) == 1000
    assert class_separation(points, labels) > 0.7  # chance is 0.1
    near = fc.nearest_neighbours(features, 0, k=8)
    assert len(near) == 8 and 0 not in near
    assert np.mean(labels[near] == labels[0]) >= 0.75, "the images the model finds alike are mostly of the same class"


def test_nearest_neighbours_are_by_cosine_distance():
    f = np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 1.0], [0.7, 0.7]])
    assert fc.nearest_neighbours(f, 0, k=3).tolist() == [2, 3, 1]
    with pytest.raises(fc.FashionCNNError, match="k must be from 1 to 3"):
        fc.nearest_neighbours(f, 0, k=4)


# -- the commands -----------------------------------------------------------------------------------------


def test_filters_command_compares_trained_and_untrained(toy_run, tmp_path, capsys):
    out = tmp_path / "f.png"
    assert main(["filters", str(toy_run.path), "--untrained", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "conv2d: 32 filters of 3×3 on 1 input channel" in text and "trained" in text and "untrained" in text
    assert out.stat().st_size > 10_000
    assert main(["filters", str(toy_run.path), "--untrained", "-o", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    # The fresh model is the run's own starting point: same architecture, same seed (the toy run's --seed 5).
    torch.manual_seed(5)
    start = fc.conv_filters(fc.build_model())[0]
    assert stats["untrained"] == fc.weight_stats(start)
    assert stats["trained"] != stats["untrained"] and stats["shape"] == [32, 1, 3, 3]


def test_feature_maps_gradcam_and_embedding_commands(toy_run, toy_data, tmp_path, capsys):
    data = ["--data-dir", str(toy_data)]
    maps = tmp_path / "maps.png"
    assert (
        main(
            ["feature-maps", str(toy_run.path), "--split", "train", "--index", "0", "--layer", "conv2d_1", "-o", str(maps), "--json", *data]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["shape"] == [64, 14, 14] and maps.is_file()
    why = tmp_path / "why.png"
    assert main(["gradcam", str(toy_run.path), "--index", "3", "--class", "pullover", "-o", str(why), "--json", *data]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["explained"] == 2 and np.array(answer["heatmap"]).shape == (28, 28) and why.is_file()
    emb = tmp_path / "emb.png"
    assert (
        main(["embedding", str(toy_run.path), "--method", "pca", "--neighbours-of", "1", "-k", "4", "-o", str(emb), "--json", *data]) == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["images"] == 100 and len(answer["neighbours"]) == 4 and (tmp_path / "emb-neighbours.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["filters", "RUN", "--layer", "dense"], "layer 'dense' is not a convolution"),
        (["filters", "RUN", "--layer", "nope"], "the model has no layer 'nope'; its layers are: conv2d"),
        (["feature-maps", "RUN", "--layer", "dense_1"], "feature maps are (channels, H, W) for one image"),
        (["gradcam", "RUN", "--class", "Unicorn"], "--class 'Unicorn' is not one of the model's classes: T-shirt/top, Trouser"),
        (["gradcam", "RUN", "--index", "100000"], "--index 100000 is out of range"),
        (["embedding", "RUN", "--neighbours-of", "5000"], "--neighbours-of 5000 is out of range"),
        (["embedding", "RUN", "--limit", "2"], "--limit must be at least 3"),
    ],
)
def test_inside_commands_refuse_bad_input_in_one_line(toy_run, toy_data, tmp_path, capsys, args, message):
    args = [str(toy_run.path) if a == "RUN" else a for a in args]
    data = [] if args[0] == "filters" else ["--data-dir", str(toy_data)]
    assert main([*args, *data, "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.png").exists()


def test_the_report_has_an_inside_the_model_section(toy_run, toy_data):
    import re

    model = fc.load_model(toy_run.path)
    analysis = fc.analyze(model, fc.load_split("test", data_dir=toy_data), split="test")
    page = fc.build_report(toy_run.path, analysis, model=model)
    section = re.search(r'<section id="inside">(.*?)</section>', page, re.S)
    assert section and '<a href="#inside">Inside the model</a>' in page
    alts = re.findall(r'<img src="data:image/png;base64,[^"]+" alt="([^"]+)"', section[1])
    assert alts == ["first-layer filters, trained and untrained", "feature maps", "Grad-CAM of the top losses", "embedding map"]
    assert '<section id="inside">' not in fc.build_report(toy_run.path, analysis, model=model, inside=False)


@pytest.mark.realdata
def test_trained_first_layer_weights_are_wider_than_untrained(real_model, capsys, tmp_path):
    assert main(["filters", str(real_model), "--untrained", "--json", "-o", str(tmp_path / "f.png")]) == 0
    stats = json.loads(capsys.readouterr().out)
    # The book: training widens the filters. Two short epochs (real_model) already widen them by a third; the full
    # Quick-start run triples their spread (README, "Inside the model").
    assert stats["trained"]["std"] > 1.25 * stats["untrained"]["std"], stats


def test_other_input_sizes_and_class_counts(tmp_path):
    """A model for 32×32 pictures of 3 classes (a folder dataset's): every map and heatmap at its own size."""
    torch.manual_seed(0)
    model = fc.build_model(num_classes=3, image_size=32)
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32), dtype=np.uint8)
    assert fc.layer_outputs(model, images, "conv2d_1")["conv2d_1"].shape == (5, 64, 16, 16)
    cam = fc.gradcam(model, images[0], target=2)
    assert cam.heatmap.shape == (32, 32) and cam.probabilities.shape == (3,)
    assert fc.saliency(model, images[0]).heatmap.shape == (32, 32)
    assert fc.embeddings(model, images).shape == (5, 100)
