"""Every API that takes images takes what the tutorial and Keras users pass (issue 27): uint8 pixels or the
tutorial's float 0..1 arrays, (N, 28, 28), (N, 28, 28, 1), (N, 1, 28, 28) or one image; the rest is one line."""

import numpy as np
import pytest
import torch

import fashion_cnn as fc
from fashion_cnn.data.transforms import as_pixels
from fashion_cnn.inference.engines import FlipTTA, TorchClassifier

PIXELS = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
SCALED = PIXELS / 255.0  # the tutorial: train_scaled = train_input / 255.0 (float64)

SAME = {
    "uint8 (N, 28, 28)": PIXELS,
    "uint8 (N, 28, 28, 1)": PIXELS[..., None],
    "uint8 (N, 1, 28, 28)": PIXELS[:, None],
    "float64 0..1 (N, 28, 28, 1), the tutorial's val_scaled": SCALED.reshape(-1, 28, 28, 1),
    "float32 0..1 (N, 28, 28)": SCALED.astype(np.float32),
    "int64 0..255": PIXELS.astype(np.int64),
    "a torch tensor": torch.from_numpy(PIXELS),
    "a float torch tensor 0..1": torch.from_numpy(SCALED).float()[:, None],
    "a list of lists": PIXELS.tolist(),
}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return fc.build_model().eval()


@pytest.mark.parametrize("name", sorted(SAME))
def test_every_accepted_form_gives_the_uint8_answer_bit_for_bit(model, name):
    expected = fc.predict_proba(model, PIXELS)
    assert np.array_equal(fc.predict_proba(model, SAME[name]), expected)


@pytest.mark.parametrize(
    "one", [PIXELS[0], PIXELS[0][..., None], SCALED[0], SCALED[0][..., None]], ids=["hw", "hw1", "float-hw", "float-hw1"]
)
def test_one_image_gets_one_row(model, one):
    probs = fc.predict_proba(model, one)
    assert probs.shape == (10,) and np.array_equal(probs, fc.predict_proba(model, PIXELS[:1])[0])


def test_the_tutorials_slice_works_as_the_book_writes_it(model):
    val_scaled = SCALED.reshape(-1, 28, 28, 1)
    probs = fc.predict_proba(model, val_scaled[0:1])  # the tutorial's model.predict(val_scaled[0:1])
    assert probs.shape == (1, 10) and abs(float(probs.sum()) - 1) < 1e-5


def test_float_pixels_are_rounded_to_the_256_levels():
    x, single = as_pixels(np.array([[0.0, 0.5 / 255, 1.4 / 255, 1.0]]))
    assert single and x.dtype == torch.uint8 and x.tolist() == [[[0, 0, 1, 255]]]


def test_test_time_augmentation_mirrors_the_width_not_the_channel(model):
    tta = FlipTTA(TorchClassifier(model))
    assert np.array_equal(tta.predict_proba(PIXELS[..., None]), tta.predict_proba(PIXELS))
    assert np.array_equal(tta.predict_proba(PIXELS), tta.predict_proba(PIXELS[:, :, ::-1]))


@pytest.mark.parametrize(
    "images, message",
    [
        (PIXELS.astype(np.float64), "float images are taken as pixels in 0..1, and these run from 0 to 255: divide them by 255"),
        (-SCALED, "run from -1 to -0: pass pixels in 0..1 (for normalised images"),
        (np.full((1, 28, 28), np.nan), "images hold NaN or infinite values"),
        (PIXELS.astype(np.int64) * 2, "integer images must be pixels 0..255; these run from 0 to 510"),
        (PIXELS.astype(bool), "images of type torch.bool"),
        (PIXELS[:, :20], "images of (20, 28) pixels given to a model that takes (28, 28); resize them first"),
        (np.zeros((2, 3, 28, 28), np.uint8), "images of shape (2, 3, 28, 28): pass (N, H, W), (N, H, W, 1) or (N, 1, H, W)"),
        (np.zeros(5, np.uint8), "images of shape (5,)"),
    ],
    ids=["0..255-floats", "negative", "nan", "beyond-255", "bool", "wrong-size", "rgb-channels-first", "1-d"],
)
def test_what_cannot_be_told_is_one_line(model, images, message):
    with pytest.raises(fc.FashionCNNError) as raised:
        fc.predict_proba(model, images)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_onnx_engine_takes_the_same_forms(untrained_model_file, tmp_path):
    pytest.importorskip("onnxruntime")
    from fashion_cnn.cli import main

    assert main(["export", str(untrained_model_file), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    onnx = fc.load_classifier(tmp_path / "m.onnx")
    expected = onnx.predict_proba(PIXELS)
    for name in ("uint8 (N, 28, 28, 1)", "float64 0..1 (N, 28, 28, 1), the tutorial's val_scaled", "uint8 (N, 1, 28, 28)"):
        assert np.array_equal(onnx.predict_proba(SAME[name]), expected), name
    torch_answer = fc.predict_proba(fc.load_model(untrained_model_file), SCALED)
    assert np.abs(torch_answer - expected).max() < 1e-5
    with pytest.raises(fc.FashionCNNError, match="divide them by 255"):
        onnx.predict_proba(PIXELS.astype(np.float32))
