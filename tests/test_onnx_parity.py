"""One ONNX file, three runtimes: onnxruntime optimised, onnxruntime unoptimised and ONNX's reference evaluator agree.

onnxruntime at ``ORT_ENABLE_ALL`` fuses the int8 QDQ pattern into integer kernels whose arithmetic depends on the
CPU: on x86 without VNNI, U8S8 products summed in pairs into int16 (``vpmaddubsw``) saturate unless weights are
7-bit (``reduce_range``). At ``ORT_DISABLE_ALL`` it runs the graph as written, as ``onnx.reference`` does. A file that
is right on every CPU gives the same probabilities in all three. Also: static-batch exports (``--batch N``).

int8 parity allows stray images: the unfused float path (``ORT_DISABLE_ALL``), the reference evaluator and the
integer kernels sum in different orders, so now and then a value lands on the other side of a requantisation
rounding tie and one image moves by one quantum (measured: 3 of 500 toy images, ≤ 0.003; 1 of 10,000 real test
images, 0.0022). The overflow is different in kind: on an emulated Haswell (AVX2, no VNNI) the 8-bit-weight file
moved half of all images by more than 1e-4, by up to 0.15, and changed labels.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from conftest import write_dataset
from fashion_cnn import FashionCNNError, build_model, fit, load_dataset, load_model, predict_proba, save_model
from fashion_cnn.cli import main
from fashion_cnn.data.registry import FASHION_MNIST
from fashion_cnn.export.onnx import export_onnx, to_onnx
from fashion_cnn.export.quantize import quantize_onnx
from fashion_cnn.inference.onnx import INPUT, OUTPUT, OnnxClassifier

#: Largest probability difference accepted between the three runtimes (fp32: on every image).
PARITY = 1e-4
#: int8: the share of images that may differ by more than PARITY (a rounding tie), and by how much at most.
STRAY_SHARE, STRAY_LIMIT = 0.05, 0.03
#: Images run by onnxruntime; the reference evaluator (numpy, ~30 ms an image) runs the first REFERENCE_IMAGES.
ORT_IMAGES, REFERENCE_IMAGES = 500, 64
LEVELS = {"ORT_ENABLE_ALL": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "ORT_DISABLE_ALL": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}


def run_ort(model: bytes, images: np.ndarray, level) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: images})[0]


def run_reference(model: bytes, images: np.ndarray) -> np.ndarray:
    return ReferenceEvaluator(onnx.load_from_string(model)).run([OUTPUT], {INPUT: images})[0]


def three_way(model: bytes, images: np.ndarray) -> dict[str, np.ndarray]:
    """Probabilities from onnxruntime at both levels (all images) and the reference evaluator (the first few)."""
    got = {name: run_ort(model, images, level) for name, level in LEVELS.items()}
    got["reference"] = run_reference(model, images[:REFERENCE_IMAGES])
    return got


def assert_parity(got: dict[str, np.ndarray], tolerance: float = PARITY, stray_share: float = 0.0) -> None:
    """Every pair of runs gives the same labels and probabilities within ``tolerance``, but for a ``stray_share``
    of the images (rounding ties, at most ``STRAY_LIMIT`` apart)."""
    names = list(got)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            n = min(len(got[a]), len(got[b]))
            per_image = np.abs(got[a][:n] - got[b][:n]).max(1)
            stray, allowed = int((per_image > tolerance).sum()), int(np.ceil(stray_share * n))
            changed = int((got[a][:n].argmax(1) != got[b][:n].argmax(1)).sum())
            where = f"{a} vs {b} on {n} images: {stray} differ by more than {tolerance:g} (largest {per_image.max():.3g}), {changed} labels change"
            assert changed == 0 and stray <= allowed and per_image.max() <= (STRAY_LIMIT if allowed else tolerance), where


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A tutorial-cnn trained for 2 epochs on toy data (as a saved and reloaded model, with its metadata)."""
    tmp = tmp_path_factory.mktemp("parity")
    data = load_dataset("fashion-mnist", write_dataset(tmp / "toy", n_train=300, n_test=ORT_IMAGES))
    torch.manual_seed(0)
    model = build_model("tutorial-cnn")
    fit(model, data.train, epochs=2, seed=0, verbose=False)
    path = save_model(tmp / "toy.safetensors", model, classes=list(FASHION_MNIST.classes), classes_ko=list(FASHION_MNIST.classes_ko))
    return load_model(path), data


@pytest.fixture(scope="module")
def toy_int8(toy, tmp_path_factory):
    model, data = toy
    path = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    quantize_onnx(to_onnx(model).SerializeToString(), path, data.train.images[:200])
    return path.read_bytes()


def test_fp32_onnx_agrees_with_itself_the_reference_and_pytorch(toy):
    model, data = toy
    images = data.test.images
    got = three_way(to_onnx(model).SerializeToString(), images)
    got["pytorch"] = predict_proba(model, images)
    assert_parity(got, tolerance=1e-5)


def test_int8_onnx_gives_the_same_probabilities_optimised_unoptimised_and_in_the_reference(toy, toy_int8):
    _, data = toy
    assert_parity(three_way(toy_int8, data.test.images), stray_share=STRAY_SHARE)


def int8_weights(proto) -> dict[str, np.ndarray]:
    """The int8 weights of the quantised Conv and Gemm/MatMul nodes (the DequantizeLinear feeding their input 1)."""
    initializers = {i.name: i for i in proto.graph.initializer}
    dequantized = {n.output[0]: n.input[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    weights = {}
    for node in proto.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and node.input[1] in dequantized:
            name = dequantized[node.input[1]]
            weights[name] = numpy_helper.to_array(initializers[name])
    return weights


def test_int8_weights_are_7_bit_so_no_cpu_can_saturate(toy_int8):
    """CPU-independent: uint8 activations (≤ 255) times weights |w| ≤ 64, two at a time, fit int16 (2·255·64 = 32,640)."""
    proto = onnx.load_from_string(toy_int8)
    weights = int8_weights(proto)
    assert len(weights) == 4  # two convolutions, two dense layers
    for name, w in weights.items():
        largest = int(np.abs(w.astype(np.int16)).max())
        assert w.dtype == np.int8 and largest <= 64, f"{name}: |w| up to {largest}, so 2·255·{largest} overflows int16 on CPUs without VNNI"
        assert 2 * 255 * largest <= np.iinfo(np.int16).max
    quantization = {p.key: p.value for p in proto.metadata_props}["quantization"]
    assert "reduce_range=True" in quantization and "VNNI" in quantization


# --- static batch (--batch N): for runtimes that cannot take a dynamic batch axis (OpenCV's dnn) ---


def batch_dim(proto):
    return proto.graph.input[0].type.tensor_type.shape.dim[0]


def test_static_batch_export_runs_any_number_of_images(toy, tmp_path):
    model, data = toy
    images = data.test.images
    result = export_onnx(model, tmp_path / "b4.onnx", batch=4)
    assert result["batch"] == 4
    proto = onnx.load(tmp_path / "b4.onnx")
    assert batch_dim(proto).dim_value == 4 and not batch_dim(proto).dim_param
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["batch"] == "4"
    static, dynamic = OnnxClassifier(tmp_path / "b4.onnx"), OnnxClassifier(to_onnx(model).SerializeToString())
    assert static.batch == 4 and dynamic.batch is None
    for n in (7, 1, 8, 0):
        got, want = static.predict_proba(images[:n]), dynamic.predict_proba(images[:n])
        assert got.shape == want.shape == (n, 10)
        assert np.abs(got - want).max(initial=0) <= 1e-6 and (got.argmax(1) == want.argmax(1)).all()
    assert static.predict_proba(images[:7], batch_size=3).shape == (7, 10)  # batch_size cannot override the file's batch
    one = static.predict_proba(images[5])
    assert one.shape == (10,) and np.abs(one - dynamic.predict_proba(images[5])).max() <= 1e-6


def test_static_batch_fp32_three_way_parity(toy):
    model, data = toy
    proto = to_onnx(model, batch=8)
    assert batch_dim(proto).dim_value == 8
    images = data.test.images[:8]
    got = {name: run_ort(proto.SerializeToString(), images, level) for name, level in LEVELS.items()}
    got["reference"] = run_reference(proto.SerializeToString(), images)
    got["pytorch"] = predict_proba(model, images)
    assert_parity(got, tolerance=1e-5)


def test_dynamic_export_records_its_batch(toy):
    model, _ = toy
    proto = to_onnx(model)
    assert batch_dim(proto).dim_param and {p.key: p.value for p in proto.metadata_props}["batch"] == "dynamic"


@pytest.mark.parametrize("batch", [0, -1])
def test_static_batch_must_be_positive(toy, batch):
    with pytest.raises(FashionCNNError, match="batch must be at least 1"):
        to_onnx(toy[0], batch=batch)


@pytest.fixture(scope="module")
def cli_run(toy, tmp_path_factory):
    """A run directory (best.safetensors) and its toy data, for the command line."""
    model, data = toy
    tmp = tmp_path_factory.mktemp("run")
    (tmp / "run").mkdir()
    save_model(tmp / "run" / "best.safetensors", model)
    return tmp / "run", write_dataset(tmp / "toy", n_train=300, n_test=ORT_IMAGES)


def test_cli_int8_static_batch(cli_run, tmp_path, capsys):
    run, data = cli_run
    out = tmp_path / "b3.int8.onnx"
    options = "--format onnx --int8 --batch 3 --calibration 100".split()
    args = ["export", str(run), *options, "--data-dir", str(data), "-o", str(out)]
    assert main(args) == 0
    assert "static batch 3" in capsys.readouterr().out
    proto = onnx.load(out)
    assert batch_dim(proto).dim_value == 3 and any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["batch"] == "3" and "reduce_range=True" in props["quantization"]
    images = load_dataset("fashion-mnist", data).test.images[:7]
    assert OnnxClassifier(out).predict_proba(images).shape == (7, 10)
    assert_parity({name: run_ort(out.read_bytes(), images[:3], level) for name, level in LEVELS.items()}, stray_share=STRAY_SHARE)


def test_cli_batch_errors(cli_run, tmp_path, capsys):
    run, _ = cli_run
    assert main(["export", str(run), "--format", "torchscript", "--batch", "4", "-o", str(tmp_path / "m.pt")]) == 2
    assert "--batch applies to --format onnx" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "onnx", "--batch", "0", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "batch must be at least 1" in capsys.readouterr().err


def test_opencv_runs_the_static_batch_export(toy, tmp_path):
    """OpenCV's dnn (4.x) cannot take a dynamic batch axis; a static one it loads and runs like onnxruntime."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV (cv2) is not installed; optional check: pip install opencv-python-headless")

    model, data = toy
    export_onnx(model, tmp_path / "b4.onnx", batch=4)
    net = cv2.dnn.readNetFromONNX(str(tmp_path / "b4.onnx"))
    images = data.test.images[:4]
    net.setInput(images)
    got = net.forward()
    assert got.shape == (4, 10)
    assert np.abs(got - OnnxClassifier(tmp_path / "b4.onnx").predict_proba(images)).max() <= 1e-5
