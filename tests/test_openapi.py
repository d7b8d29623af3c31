"""The OpenAPI document is valid and describes what the service really answers, on success and on every error.

Each request below is sent to the app, and its JSON body is validated against the schema the document
publishes for that path, method and status code; a status code the document does not list fails the test.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
openapi_spec_validator = pytest.importorskip("openapi_spec_validator", reason="the test extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402
from openapi_schema_validator import OAS30Validator, OAS31Validator, validate  # noqa: E402

from fashion_cnn.data.registry import FASHION_MNIST  # noqa: E402
from fashion_cnn.models import build_model, load_model, save_model  # noqa: E402
from fashion_cnn.serving.app import create_app  # noqa: E402
from fashion_cnn.serving.limits import Limits  # noqa: E402

LIMITS = Limits(max_upload_bytes=200_000, max_pixels=100_000, max_batch=2)
TRAINED_META = {
    "dataset": {"name": "fashion-mnist", "val_fraction": 0.2, "split_seed": 42},
    "epoch": 3,
    "metrics": {"val": {"loss": 0.31, "accuracy": 0.89}, "test": {"loss": 0.33, "accuracy": 0.88}, "best_epoch": 3},
}


def write_model(path, **meta):
    """A tutorial-cnn with random weights and Fashion-MNIST's class names."""
    import torch

    torch.manual_seed(0)
    classes, classes_ko = list(FASHION_MNIST.classes), list(FASHION_MNIST.classes_ko)
    return save_model(path, build_model("tutorial-cnn"), classes=classes, classes_ko=classes_ko, **meta)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openapi-models")
    return {"trained": write_model(folder / "trained.safetensors", **TRAINED_META), "bare": write_model(folder / "bare.safetensors")}


@pytest.fixture(scope="module")
def client(model_files):
    with TestClient(create_app(str(model_files["trained"]), limits=LIMITS)) as c:
        yield c


@pytest.fixture(scope="module")
def spec(client) -> dict:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def png(side: int = 60, value: int = 200, width: int | None = None) -> bytes:
    a = np.full((side, width or side), value, np.uint8)
    a[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 255 - value
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def published_schema(spec: dict, response) -> dict:
    """The schema the document gives for ``response``'s path, method and status code (fails when there is none)."""
    path, method, status = response.request.url.path, response.request.method.lower(), str(response.status_code)
    assert path in spec["paths"], f"{path} is not in the OpenAPI document"
    operation = spec["paths"][path].get(method)
    assert operation is not None, f"{method.upper()} {path} is not in the OpenAPI document"
    responses = operation["responses"]
    assert status in responses, (
        f"{method.upper()} {path} answered {status} ({response.text[:200]}), but the document lists only {sorted(responses)}"
    )
    content = responses[status].get("content", {})
    media = response.headers["content-type"].split(";")[0].strip()
    assert media in content, f"{method.upper()} {path} {status} answered {media}; the document lists {sorted(content)}"
    schema = content[media].get("schema")
    assert schema, f"{method.upper()} {path} {status}: the document gives no schema for {media}"
    return schema


def check_against_document(spec: dict, response) -> dict:
    """Validate ``response``'s JSON body against the document's schema for it; return the body."""
    schema = published_schema(spec, response)
    body = response.json()
    cls = OAS31Validator if spec["openapi"].startswith("3.1") else OAS30Validator
    # Local references (#/components/schemas/...) resolve against the schema's root: give it the document's components.
    validate(body, {**schema, "components": spec.get("components", {})}, cls=cls)
    return body


def test_the_document_is_valid_openapi(spec):
    openapi_spec_validator.validate(spec)
    assert spec["openapi"].startswith(("3.0", "3.1"))


def test_every_endpoint_documents_its_success_and_errors_with_a_schema(spec):
    """Non-empty 200 schemas; one error schema, {"detail": string}, for every documented error (no HTTPValidationError)."""
    errors = {"/predict": {"400", "413", "415", "422", "500"}, "/predict/batch": {"400", "413", "415", "422", "500"}}
    for path, method in [("/health", "get"), ("/model", "get"), ("/predict", "post"), ("/predict/batch", "post")]:
        responses = spec["paths"][path][method]["responses"]
        assert responses["200"]["content"]["application/json"]["schema"], f"{method.upper()} {path}: empty 200 schema"
        assert errors.get(path, {"500"}) <= set(responses), f"{method.upper()} {path} documents only {sorted(responses)}"
        for status, answer in responses.items():
            if status != "200":
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorResponse"]["properties"]["detail"]["type"] == "string"
    assert schemas["ErrorResponse"]["required"] == ["detail"]


def test_the_predict_schema_describes_its_fields(spec):
    schemas = spec["components"]["schemas"]
    prediction = schemas[
        spec["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    ]
    assert set(prediction["required"]) == {"label", "label_ko", "index", "probability", "probabilities", "time_ms"}
    assert "input_png" in prediction["properties"] and "input_png" not in prediction["required"]
    for name, field in prediction["properties"].items():
        assert field.get("description"), f"{name} has no description"


def test_the_documented_choices_are_the_real_ones(spec):
    from fashion_cnn.data.images import INVERT_CHOICES
    from fashion_cnn.inference.engines import ENGINES

    schemas = spec["components"]["schemas"]
    assert schemas["ModelInfo"]["properties"]["engine"]["enum"] == list(ENGINES)
    assert schemas["PreprocessingInfo"]["properties"]["invert"]["enum"] == list(INVERT_CHOICES)


def success_cases():
    two = [("files", ("a.png", png(60), "image/png")), ("files", ("b.png", png(80, 30), "image/png"))]
    return [
        pytest.param(lambda c: c.get("/health"), 200, id="health"),
        pytest.param(lambda c: c.get("/model"), 200, id="model"),
        pytest.param(lambda c: c.post("/predict", content=png(), headers={"content-type": "image/png"}), 200, id="predict-raw"),
        pytest.param(lambda c: c.post("/predict", files={"file": ("shirt.png", png(), "image/png")}), 200, id="predict-multipart"),
        pytest.param(lambda c: c.post("/predict?include_input=true", content=png()), 200, id="predict-include-input"),
        pytest.param(
            lambda c: c.post("/predict?include=gradcam&include=feature_maps", content=png()), 200, id="predict-include-gradcam-feature-maps"
        ),
        pytest.param(lambda c: c.post("/predict/batch", files=two), 200, id="batch-of-two"),
        pytest.param(lambda c: c.post("/predict/batch?include_input=true", files=two), 200, id="batch-include-input"),
    ]


def error_cases():
    three = [("files", (f"{i}.png", png(), "image/png")) for i in range(3)]
    truncated = png(120, 90, width=150)
    return [
        pytest.param(lambda c: c.post("/predict", content=b""), 400, "empty", id="400-empty-body"),
        pytest.param(lambda c: c.post("/predict/batch", content=png()), 400, "multipart", id="400-batch-not-multipart"),
        pytest.param(lambda c: c.post("/predict", content=b"\0" * 200_001), 413, "larger than 200,000 bytes", id="413-upload-limit"),
        pytest.param(lambda c: c.post("/predict", content=png(400)), 413, "more than the 100,000 allowed", id="413-max-pixels"),
        pytest.param(lambda c: c.post("/predict/batch", files=three), 413, "at most 2", id="413-too-many-files"),
        pytest.param(
            lambda c: c.post("/predict", files={"file": ("notes.png", b"just some text", "image/png")}),
            415,
            "notes.png",
            id="415-not-an-image",
        ),
        pytest.param(lambda c: c.post("/predict", content=truncated[: len(truncated) // 2]), 422, "truncated", id="422-truncated-png"),
        pytest.param(
            lambda c: c.post("/predict?include_input=notabool", content=png()), 422, "include_input", id="422-bad-query-parameter"
        ),
        pytest.param(
            lambda c: c.post("/predict/batch?include_input=maybe", files=[("files", ("a.png", png(), "image/png"))]),
            422,
            "include_input",
            id="422-batch-bad-query-parameter",
        ),
        pytest.param(
            lambda c: c.post("/predict?include=everything", content=png()),
            422,
            "the query parameter include='everything' is not valid: input should be 'gradcam' or 'feature_maps'",
            id="422-unknown-include",
        ),
    ]


@pytest.mark.parametrize("send, status", success_cases())
def test_successes_match_the_document(client, spec, send, status):
    r = send(client)
    assert r.status_code == status, r.text
    check_against_document(spec, r)


@pytest.mark.parametrize("send, status, message", error_cases())
def test_errors_match_the_document(client, spec, send, status, message):
    r = send(client)
    assert r.status_code == status, r.text
    body = check_against_document(spec, r)
    assert message in body["detail"] and "\n" not in body["detail"]


def test_optional_fields_appear_only_when_asked(client, spec):
    plain = check_against_document(spec, client.post("/predict", content=png()))
    assert "input_png" not in plain
    asked = check_against_document(spec, client.post("/predict?include_input=true", content=png()))
    assert asked["input_png"]
    batch = check_against_document(spec, client.post("/predict/batch", files=[("files", ("a.png", png(), "image/png"))]))
    assert batch["results"][0]["file"] == "a.png" and "input_png" not in batch["results"][0]


def test_the_bad_parameter_error_names_the_parameter_and_what_to_send(client):
    detail = client.post("/predict?include_input=notabool", content=png()).json()["detail"]
    assert isinstance(detail, str) and "include_input" in detail and "notabool" in detail and "true" in detail


def test_model_info_of_a_bare_model_matches_the_document(model_files, spec):
    """No dataset, epoch or metrics recorded: the nullable fields are null, and still match the document."""
    with TestClient(create_app(str(model_files["bare"]), limits=LIMITS)) as c:
        info = check_against_document(spec, c.get("/model"))
    assert info["epoch"] is None and info["metrics"] is None and info["dataset"] is None


def test_the_onnx_engine_matches_the_document(model_files, spec, tmp_path):
    """The ONNX engine has no parameter count (null) and answers predictions like the PyTorch one."""
    pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install -e '.[export]'")
    from fashion_cnn.export.onnx import export_onnx

    shutil.copy(model_files["trained"], tmp_path / "best.safetensors")
    export_onnx(load_model(model_files["trained"]), tmp_path / "model.onnx")
    with TestClient(create_app(str(tmp_path), limits=LIMITS, engine="onnx")) as c:
        info = check_against_document(spec, c.get("/model"))
        check_against_document(spec, c.post("/predict?include_input=true", content=png()))
    assert info["engine"] == "onnx" and info["parameters"] is None and info["epoch"] == 3
