"""The JSON the web service answers, as pydantic models: they write the OpenAPI document (``/openapi.json``).

The endpoints build their answers as plain dicts (``ImageClassifier.classify``, ``classify_many``, ``info``)
and send them as they are; these models only describe them, field for field and in the same order, so a
generic client knows every field. ``tests/test_openapi.py`` checks real answers against the document.

Objects whose every field is known forbid others (``additionalProperties: false``); the parts read from the
model file (``arch``, ``input``, ``dataset``, ``metrics``) may hold more than is listed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def _absent_unless_asked(description: str) -> Any:
    """A field that is left out of the answer, never null, unless asked for: optional, with no default shown."""
    return Field(None, description=description, json_schema_extra=lambda schema: schema.pop("default", None))


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorResponse(_Closed):
    """Every error, whatever its status code."""

    detail: str = Field(description="What was wrong with the request and what to send instead, in one line.")


class Health(_Closed):
    status: Literal["ok"] = Field(description="Always `ok`: the model is loaded and the server answers.")


class ClassProbability(_Closed):
    index: int = Field(description="The class's label, 0..N-1.")
    name: str = Field(description="The class's English name.")
    name_ko: str = Field(description="The class's Korean name (the English one when the model file has none).")
    probability: float = Field(description="The model's probability for this class, 0..1; the N sum to 1.")


class GradCam(_Closed):
    """Why the model chose its class: Grad-CAM (see ``fashion_cnn.inspection.attribution``)."""

    layer: str = Field(description="The convolution layer the map was taken at (the last one).")
    index: int = Field(description="The class explained: the most probable one.")
    overlay_png: str = Field(
        description="The picture the model saw, 4× larger, with the heatmap laid over it (blue: no evidence, red: the most), as a base64 PNG."
    )
    heatmap: list[list[float]] = Field(description="The heatmap itself, 0..1, one row per pixel row of the model's input (28×28).")


class FeatureMaps(_Closed):
    """What the first convolution layer outputs for the picture: one small map per filter."""

    layer: str = Field(description="The layer's name (`conv2d` for the tutorial's model).")
    count: int = Field(description="How many maps (the layer's filters: 32).")
    columns: int = Field(description="Maps per row of `grid_png`.")
    grid_png: str = Field(
        description="Every map, each in its own colour range (viridis), in a grid with 2-pixel white gaps, as a base64 PNG."
    )


class Prediction(_Closed):
    """One picture's classification: the most probable class, then every class's probability."""

    label: str = Field(description="The most probable class's English name.")
    label_ko: str = Field(description="The most probable class's Korean name.")
    index: int = Field(description="The most probable class's label, 0..N-1.")
    probability: float = Field(description="The most probable class's probability, 0..1.")
    probabilities: list[ClassProbability] = Field(description="Every class, in label order.")
    in_distribution: bool = _absent_unless_asked(
        "Only for a model with a not-clothing detector (`fashion-cnn calibrate`): false when the picture does not look "
        "like the training images (its `ood_score` is over the model's threshold, see `/model`'s `ood`); the class and "
        "probabilities are still given (a server started with `--ood reject` answers 422 instead)."
    )
    ood_score: float = _absent_unless_asked(
        "Only with `in_distribution`: the not-clothing score, the cosine distance (0..2) of the picture's features to the "
        "nearest prototype of the training images; higher is less like them."
    )
    verdict: str = _absent_unless_asked(
        "Only when `in_distribution` is false: the sentence to show, e.g. `this does not look like clothing (score 0.190 > 0.080)`."
    )
    input_png: str = _absent_unless_asked(
        "Only with `include_input=true`: the preprocessed picture the model saw (grayscale, the model's input size: 28×28), as a base64 PNG."
    )
    gradcam: GradCam = _absent_unless_asked(
        "Only on `/predict` with `include=gradcam`: where in the picture the evidence for its class lies."
    )
    feature_maps: FeatureMaps = _absent_unless_asked(
        "Only on `/predict` with `include=feature_maps`: what the first convolution layer made of the picture."
    )
    time_ms: float = Field(description="Milliseconds from the start of decoding to this result (in a batch, from the start of the batch).")


class _Named(_Closed):
    file: str = Field(description="The upload's file name (`file N`, counting from 1, when it has none).")


class BatchPrediction(Prediction, _Named):  # _Named last among the bases: `file` comes first, as in the answer
    """One picture of a batch: its name, then its classification."""


class BatchError(_Named):
    """One picture of a batch that could not be classified: its name, what was wrong, and the status a single
    ``/predict`` of it would have got."""

    error: str = Field(description="What was wrong with this picture and what to send instead, in one line.")
    status: Literal[400, 413, 415, 422, 503] = Field(
        description="400: empty; 413: too many pixels; 415: not a PNG, JPEG, WebP, BMP or GIF; 422: damaged or truncated, or (on a server started with `--ood reject`) not clothing; "
        "503: not decoded within the request's time (send it again)."
    )


class BatchResponse(_Closed):
    results: list[BatchPrediction | BatchError] = Field(
        description="One result per picture, in upload order: its classification, or its error (the others are still classified)."
    )


class Architecture(_Open):
    name: str = Field(description="The architecture's registered name, e.g. `tutorial-cnn`.")
    kwargs: dict[str, Any] = Field(description="The arguments it was built with.")


class InputDescription(_Open):
    channels: int = Field(description="Channels of the model's input (1: grayscale).")
    height: int = Field(description="Height in pixels.")
    width: int = Field(description="Width in pixels.")
    scale: float = Field(description="What uint8 pixels are multiplied by before the model (1/255).")


class DatasetInfo(_Open):
    name: str = Field(description="The dataset the model was trained on.")
    val_fraction: float = _absent_unless_asked("The fraction of the training set held out for validation, when one was.")
    split_seed: int | None = Field(None, description="The seed of that split, when there was one.")


class PreprocessingInfo(_Closed):
    size: int = Field(description="The side of the square the picture is turned into.")
    invert: Literal["auto", "always", "never"] = Field(description="Whether dark-on-light pictures are inverted.")
    trim: bool = Field(description="Whether the picture is cropped to the object.")
    level: bool = Field(description="Whether a dark background is made pure black.")
    keep_aspect: bool = Field(description="Whether the object keeps its shape (padded to a square) or is stretched.")


class LimitsInfo(_Closed):
    max_upload_bytes: int = Field(description="Larger request bodies get 413.")
    max_pixels: int = Field(description="Pictures with more pixels get 413, before they are decoded.")
    max_request_pixels: int = Field(
        description="A request whose pictures decode to more pixels in all (a batch's sum; a JPEG at its reduced decoding scale) gets 413, before any is decoded."
    )
    max_batch: int = Field(description="The most pictures in one `/predict/batch` request.")


class OodInfo(_Open):
    method: str = Field(description="How the score is computed: `knn-prototypes` (see fashion_cnn.inference.ood).")
    threshold: float = Field(description="Pictures whose `ood_score` is over this do not look like the training images.")
    keep: float = Field(description="The share of validation images the threshold keeps (0.95).")
    action: Literal["warn", "reject"] = Field(description="What this server does with such a picture: answer with a warning, or 422.")


class ModelInfo(_Closed):
    """The served model and how the service uses it."""

    file: str = Field(description="The name of the model file being served (its name only, not where it lies).")
    engine: Literal["torch", "onnx"] = Field(description="What runs it: PyTorch (safetensors) or onnxruntime (ONNX).")
    arch: Architecture | None = Field(description="The architecture, as recorded in the model file.")
    parameters: int | None = Field(description="The number of weights; null with the onnx engine.")
    classes: list[str] = Field(description="The class names in label order.")
    classes_ko: list[str] = Field(description="The Korean class names in label order (the English ones when the file has none).")
    input: InputDescription = Field(description="The pixels the model takes.")
    dataset: DatasetInfo | None = Field(description="Where it was trained, when the file records it.")
    epoch: int | None = Field(description="The epoch its weights come from, when the file records it.")
    metrics: dict[str, Any] | None = Field(description="Its training and evaluation metrics, when the file records them.")
    preprocessing: PreprocessingInfo = Field(description="How every picture is turned into the model's input.")
    ood: OodInfo | None = Field(description="The model's not-clothing detector, or null when its file has none.")
    limits: LimitsInfo = Field(description="What one request may cost.")
