"""What the web service does per request: picture bytes → preprocessed 28×28 → probabilities → JSON-ready dict.

    from fashion_cnn.serving.classifier import ImageClassifier
    clf = ImageClassifier.load("runs/NAME")                    # or engine="onnx" for RUN/model.onnx
    clf.classify(Path("sneaker.jpg").read_bytes())["label"]      # 'Sneaker'

The model is loaded once, through ``fashion_cnn.inference.engines`` (PyTorch under ``torch.inference_mode``,
or onnxruntime); every request shares it.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.images import DamagedImage, ImageError, ImageTooLarge, Preprocessing, UnsupportedImage, decode_cost, load_image, to_png
from ..inference.engines import Classifier, load_classifier
from ..models.metadata import class_names, describe_input, input_side
from .explain import PARTS, Explainer
from .limits import MAX_PIXELS

#: The HTTP status of each kind of bad picture.
ERROR_STATUS = {UnsupportedImage: 415, DamagedImage: 422, ImageTooLarge: 413}


def status_of(error: ImageError) -> int:
    return ERROR_STATUS.get(type(error), 400)


@dataclass
class ImageClassifier:
    """A loaded model (any engine) with its class names and preprocessing.

    Args:
        model: a classifier from ``fashion_cnn.inference.engines.load_classifier``: ``predict_proba`` and ``meta``.
        options: the preprocessing of every picture.
        max_pixels: refuse larger pictures before decoding them.
    """

    model: Classifier
    options: Preprocessing = field(default_factory=Preprocessing)
    max_pixels: int = MAX_PIXELS

    def __post_init__(self):
        self.classes = class_names(self.model.meta)
        self.classes_ko = class_names(self.model.meta, "ko")
        self._explainer: Explainer | None = None

    @property
    def explainer(self) -> Explainer:
        """Grad-CAM and feature maps (``include=``): PyTorch models only, made on first use."""
        if self._explainer is None:
            torch_model = getattr(self.model, "model", None)
            if torch_model is None:
                raise ImageError(
                    f"include={'/'.join(PARTS)} needs the PyTorch engine: start the server without --engine {self.model.engine}"
                )
            self._explainer = Explainer(torch_model)
        return self._explainer

    @property
    def source(self) -> str:
        return self.model.source

    @classmethod
    def load(cls, run_or_model: str, *, engine: str = "torch", max_pixels: int = MAX_PIXELS) -> ImageClassifier:
        # One onnxruntime thread per call, as for torch: requests run side by side instead of splitting a tiny graph.
        model = load_classifier(run_or_model, engine, threads=1)
        return cls(model, Preprocessing(size=input_side(model.meta)), max_pixels)

    def info(self) -> dict:
        """What ``GET /model`` answers: architecture, classes, input, metrics."""
        meta = self.model.meta
        torch_model = getattr(self.model, "model", None)
        return {
            "file": Path(self.source).name,  # its name only: where it lies on this machine is nobody's business
            "engine": self.model.engine,
            "arch": meta.get("arch"),
            "parameters": sum(p.numel() for p in torch_model.parameters()) if torch_model is not None else None,
            "classes": self.classes,
            "classes_ko": self.classes_ko,
            "input": describe_input(meta),
            "dataset": meta.get("dataset"),
            "epoch": meta.get("epoch"),
            "metrics": meta.get("metrics"),
            "preprocessing": self.options.to_dict(),
        }

    def warm_up(self) -> None:
        """One prediction on a small JPEG: Pillow loads its decoders and the engine (and, for PyTorch, the explainer
        of ``include=``) sets itself up on first use."""
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (240, 240, 240)).save(buf, format="JPEG")
        self.classify(buf.getvalue(), include=PARTS if getattr(self.model, "model", None) is not None else ())

    def prepare(self, data: bytes, name: str | None = None) -> np.ndarray:
        """Decode and preprocess one picture (raises ``fashion_cnn.data.images.ImageError`` on bad input)."""
        return load_image(data, self.options, max_pixels=self.max_pixels, name=name)

    def classify(self, data: bytes, name: str | None = None, include_input: bool = False, include=()) -> dict:
        """One picture → the JSON of ``POST /predict``; ``include`` adds ``gradcam`` and/or ``feature_maps``."""
        started = time.perf_counter()
        x = self.prepare(data, name)
        probs = self.model.predict_proba(x[None])[0]
        extra = self.explainer.explain(x, int(probs.argmax()), set(include)) if include else {}
        return self._result(x, probs, started, include_input, extra)

    def cost(self, data: bytes, name: str | None = None) -> int:
        """The pixels decoding ``data`` would take, from its header (raises ``ImageError`` as ``prepare`` would)."""
        return decode_cost(data, max_pixels=self.max_pixels, name=name)

    def classify_many(
        self, items: list[tuple[str, bytes | ImageError]], include_input: bool = False, deadline: float | None = None
    ) -> list[dict]:
        """Several pictures in one model call → one result each, named by ``items``' names, in their order.

        A picture that cannot be used (or an item that is already an ``ImageError``) gets
        ``{"file", "error", "status"}`` in its place; the others are classified. Past ``deadline`` (a
        ``time.monotonic()`` time) the pictures not yet decoded get a 503 error of their own.
        """
        started = time.perf_counter()
        results: list[dict] = []
        ready: list[tuple[int, np.ndarray]] = []
        for name, data in items:
            if deadline is not None and time.monotonic() > deadline and not isinstance(data, ImageError):
                error = "not decoded: the request used up its time; send this picture again in a request of its own"
                results.append({"file": name, "error": error, "status": 503})
                continue
            try:
                if isinstance(data, ImageError):
                    raise data
                ready.append((len(results), self.prepare(data, name)))
                results.append({"file": name})
            except ImageError as e:
                results.append({"file": name, "error": str(e), "status": status_of(e)})
        if ready:
            xs = np.stack([x for _, x in ready])
            for (i, x), p in zip(ready, self.model.predict_proba(xs)):
                results[i].update(self._result(x, p, started, include_input))
        return results

    def _result(self, x: np.ndarray, probs: np.ndarray, started: float, include_input: bool, extra: dict | None = None) -> dict:
        top = int(probs.argmax())
        out = {
            "label": self.classes[top],
            "label_ko": self.classes_ko[top],
            "index": top,
            "probability": float(probs[top]),
            "probabilities": [
                {"index": i, "name": n, "name_ko": k, "probability": float(p)}
                for i, (n, k, p) in enumerate(zip(self.classes, self.classes_ko, probs))
            ],
        }
        if include_input:
            out["input_png"] = base64.b64encode(to_png(x)).decode("ascii")
        out.update(extra or {})
        out["time_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return out
