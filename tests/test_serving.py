"""The web service's API: predictions, model info, the page's files, and every kind of bad upload → 4xx JSON."""

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import wait_until_serving

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from fashion_cnn.data.images import load_image  # noqa: E402
from fashion_cnn.data.registry import FASHION_MNIST  # noqa: E402
from fashion_cnn.inference.predict import predict_proba  # noqa: E402
from fashion_cnn.models.files import load_model  # noqa: E402
from fashion_cnn.serving.app import create_app  # noqa: E402
from fashion_cnn.serving.limits import Limits  # noqa: E402
from test_images import gif_bomb, png_bomb  # noqa: E402

SNEAKER = Path(__file__).parent / "data" / "sneaker-on-table.jpg"


@pytest.fixture(scope="module")
def client(untrained_model_file):
    with TestClient(create_app(str(untrained_model_file), limits=Limits(max_upload_bytes=2_000_000, max_batch=4))) as c:
        yield c


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_health_and_model(client):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/model").json()
    assert info["classes"] == list(FASHION_MNIST.classes) and info["classes_ko"] == list(FASHION_MNIST.classes_ko)
    assert info["arch"]["name"] == "tutorial-cnn" and info["parameters"] == 333_526
    assert info["limits"]["max_upload_bytes"] == 2_000_000 and info["preprocessing"]["size"] == 28


def test_predict_raw_body_and_multipart_agree_with_the_model(client, untrained_model_file):
    data = SNEAKER.read_bytes()
    raw = client.post("/predict", content=data, headers={"content-type": "image/jpeg"})
    form = client.post("/predict", files={"file": ("photo.jpg", data, "image/jpeg")})
    assert raw.status_code == form.status_code == 200
    r = raw.json()
    expected = predict_proba(load_model(untrained_model_file), load_image(SNEAKER))
    assert [p["probability"] for p in r["probabilities"]] == pytest.approx(expected.tolist(), abs=1e-5)
    assert r["index"] == int(expected.argmax()) and r["label"] == FASHION_MNIST.classes[r["index"]]
    assert r["label_ko"] == FASHION_MNIST.classes_ko[r["index"]]
    assert [(p["name"], p["name_ko"]) for p in r["probabilities"]] == list(zip(FASHION_MNIST.classes, FASHION_MNIST.classes_ko))
    assert r["time_ms"] > 0 and "input_png" not in r
    assert [p["probability"] for p in form.json()["probabilities"]] == pytest.approx(expected.tolist(), abs=1e-5)


def test_predict_can_return_the_model_input(client):
    r = client.post("/predict?include_input=true", content=SNEAKER.read_bytes()).json()
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(r["input_png"]))))
    assert np.array_equal(seen, load_image(SNEAKER))


def test_batch(client):
    box = np.full((50, 40), 240, np.uint8)
    box[5:45, 10:30] = 20
    files = [("files", ("sneaker.jpg", SNEAKER.read_bytes(), "image/jpeg")), ("files", ("box.png", png(box), "image/png"))]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["file"] for x in results] == ["sneaker.jpg", "box.png"]
    single = client.post("/predict", content=png(box)).json()
    assert [p["probability"] for p in results[1]["probabilities"]] == pytest.approx(
        [p["probability"] for p in single["probabilities"]], abs=1e-6
    )


def truncated_jpeg() -> bytes:
    data = SNEAKER.read_bytes()
    return data[: len(data) // 3]


@pytest.mark.parametrize(
    "send, status, message",
    [
        (lambda c: c.post("/predict", content=b""), 400, "empty"),
        (lambda c: c.post("/predict", files={"file": ("empty.png", b"", "image/png")}), 400, "empty"),
        (
            lambda c: c.post("/predict", files={"file": ("shirt.png", b"just some text, not a picture", "image/png")}),
            415,
            "shirt.png is not a PNG",
        ),
        (lambda c: c.post("/predict", content=truncated_jpeg(), headers={"content-type": "image/jpeg"}), 422, "damaged or truncated"),
        (
            lambda c: c.post("/predict", files={"file": ("huge.png", png_bomb(), "image/png")}),
            413,
            "400,000,000 pixels, more than the 16,000,000 allowed",
        ),
        (lambda c: c.post("/predict", content=gif_bomb()), 413, "pixels"),
        (lambda c: c.post("/predict", content=b"\0" * 2_000_001), 413, "larger than 2,000,000 bytes"),
        (
            lambda c: c.post("/predict", content=iter([b"\0" * 1_000_000] * 3)),
            413,
            "larger than 2,000,000 bytes",
        ),  # chunked: no Content-Length
        (lambda c: c.post("/predict", data={"note": "no file here"}, files={"other": ("", b"", "")}), 400, "no file"),
        (
            lambda c: c.post("/predict", content=b"--xyz\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xyz"}),
            400,
            "the upload holds no file; attach a picture",
        ),  # a broken multipart body has no parts
        (lambda c: c.post("/predict/batch", content=SNEAKER.read_bytes()), 400, "multipart"),
        (
            lambda c: c.post("/predict/batch", files=[("files", (f"{i}.jpg", SNEAKER.read_bytes(), "image/jpeg")) for i in range(5)]),
            413,
            "at most 4",
        ),
    ],
)
def test_bad_uploads_get_a_4xx_json_error(client, send, status, message):
    r = send(client)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert message in r.json()["detail"]
    assert client.get("/health").status_code == 200  # and the server is still fine


def test_one_bad_file_in_a_batch_gets_its_own_error_and_the_others_their_answers(client):
    files = [("files", ("a.jpg", SNEAKER.read_bytes(), "image/jpeg")), ("files", ("b.png", b"GIF89a\0\0", "image/png"))]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 200, r.text
    good, bad = r.json()["results"]
    assert good["file"] == "a.jpg" and good["label"]
    assert bad["file"] == "b.png" and bad["status"] == 415 and "b.png" in bad["error"]


def test_page_and_its_files_are_served_without_any_outside_address(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert 'id="file-input"' in html and 'id="canvas"' in html and 'id="bars"' in html
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 100
        assert not re.search(r"https?://", r.text), f"{asset} refers to an outside address"
    assert not re.search(r"(?:src|href)=\"https?://", html)


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/predict/batch", "/health", "/model"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


@pytest.fixture(scope="module")
def onnx_run(untrained_model_file, tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install -e '.[export]'")
    from fashion_cnn.export.onnx import export_onnx

    run = tmp_path_factory.mktemp("onnx-run")
    shutil.copy(untrained_model_file, run / "best.safetensors")
    export_onnx(load_model(untrained_model_file), run / "model.onnx")
    return run


def test_onnx_engine_serves_and_predicts_like_torch(onnx_run, capsys):
    from fashion_cnn.cli import main

    with TestClient(create_app(str(onnx_run), engine="onnx")) as c:
        assert c.get("/model").json()["engine"] == "onnx"
        by_onnx = c.post("/predict", content=SNEAKER.read_bytes()).json()
    with TestClient(create_app(str(onnx_run))) as c:
        by_torch = c.post("/predict", content=SNEAKER.read_bytes()).json()
    assert [p["probability"] for p in by_onnx["probabilities"]] == pytest.approx(
        [p["probability"] for p in by_torch["probabilities"]], abs=1e-5
    )

    assert main(["predict", str(onnx_run), str(SNEAKER), "--engine", "onnx", "--json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)["images"][0]["probabilities"]
    assert list(from_cli.values()) == pytest.approx([p["probability"] for p in by_torch["probabilities"]], abs=1e-5)


def test_serve_command_listens_on_localhost(untrained_model_file):
    """``fashion-cnn serve`` as a user starts it: a real uvicorn on 127.0.0.1, stopped by the test."""
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fashion_cnn", "serve", str(untrained_model_file), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_serving(proc, port)
        r = httpx.post(f"http://127.0.0.1:{port}/predict", content=SNEAKER.read_bytes())
        assert r.status_code == 200 and r.json()["label"] in FASHION_MNIST.classes
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert f"on http://127.0.0.1:{port}/" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "70000"], "--port 70000 is out of range"),
        (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    ],
)
def test_serve_refuses_bad_options(untrained_model_file, argv, message, capsys):
    from fashion_cnn.cli import main

    assert main(["serve", str(untrained_model_file), *argv]) == 2
    assert message in capsys.readouterr().err


def test_serve_names_a_missing_model(tmp_path, capsys):
    from fashion_cnn.cli import main

    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
