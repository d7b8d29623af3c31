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
from ..errors import FashionCNNError
from ..inference.engines import Classifier, load_classifier
from ..inference.ood import OOD_ACTIONS, verdict
from ..models.metadata import class_names, describe_input, input_side, ood_of
from .explain import PARTS, Explainer
from .limits import MAX_PIXELS


class NotClothing(ImageError):
    """A picture the model's detector finds unlike its training images, on a service started with ``--ood reject``."""


#: The HTTP status of each kind of bad picture.
ERROR_STATUS = {UnsupportedImage: 415, DamagedImage: 422, ImageTooLarge: 413, NotClothing: 422}


def status_of(error: ImageError) -> int:
    return ERROR_STATUS.get(type(error), 400)


@dataclass
class ImageClassifier:
    """A loaded model (any engine) with its class names and preprocessing.

    Args:
        model: a classifier from ``fashion_cnn.inference.engines.load_classifier``: ``predict_proba`` and ``meta``.
        options: the preprocessing of every picture.
        max_pixels: refuse larger pictures before decoding them.
        ood: for a picture unlike the training images (``inference.ood``): ``warn`` (answer, with
            ``in_distribution: false``) or ``reject`` (a 422 error naming the score).
    """

    model: Classifier
    options: Preprocessing = field(default_factory=Preprocessing)
    max_pixels: int = MAX_PIXELS
    ood: str = "warn"

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
    def load(cls, run_or_model: str, *, engine: str = "torch", max_pixels: int = MAX_PIXELS, ood: str = "warn") -> ImageClassifier:
        # One onnxruntime thread per call, as for torch: requests run side by side instead of splitting a tiny graph.
        model = load_classifier(run_or_model, engine, threads=1)
        if ood not in OOD_ACTIONS:
            raise FashionCNNError(f"unknown --ood action {ood!r}; choose one of: {', '.join(OOD_ACTIONS)}")
        return cls(model, Preprocessing(size=input_side(model.meta)), max_pixels, ood)

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
            "ood": {**settings, "action": self.ood} if (settings := ood_of(meta)) else None,
        }

    def warm_up(self) -> None:
        """One prediction on a small JPEG: Pillow loads its decoders and the engine (and, for PyTorch, the explainer
        of ``include=``) sets itself up on first use."""
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (240, 240, 240)).save(buf, format="JPEG")
        try:
            self.classify(buf.getvalue(), include=PARTS if getattr(self.model, "model", None) is not None else ())
        except NotClothing:  # a blank picture is not clothing: with --ood reject that is the right answer
            pass

    def prepare(self, data: bytes, name: str | None = None) -> np.ndarray:
        """Decode and preprocess one picture (raises ``fashion_cnn.data.images.ImageError`` on bad input)."""
        return load_image(data, self.options, max_pixels=self.max_pixels, name=name)

    def classify(self, data: bytes, name: str | None = None, include_input: bool = False, include=()) -> dict:
        """One picture → the JSON of ``POST /predict``; ``include`` adds ``gradcam`` and/or ``feature_maps``."""
        started = time.perf_counter()
        x = self.prepare(data, name)
        probs, scores = self.model.predict_with_scores(x[None])
        score = None if scores is None else float(scores[0])
        self._refuse_unlike(score)
        extra = self.explainer.explain(x, int(probs[0].argmax()), set(include)) if include else {}
        return self._result(x, probs[0], started, include_input, extra, score)

    def _refuse_unlike(self, score: float | None) -> None:
        """``--ood reject``: a picture over the threshold is an error (422) naming the score, not an answer."""
        unlike = verdict(score, self.model.meta)
        if unlike and self.ood == "reject":
            raise NotClothing(f"{unlike}; send a photo of one garment, or start the server with --ood warn to get its class anyway")

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
            probs, scores = self.model.predict_with_scores(xs)
            scores = [None] * len(ready) if scores is None else [float(s) for s in scores]
            for (i, x), p, score in zip(ready, probs, scores):
                try:
                    self._refuse_unlike(score)
                except NotClothing as e:
                    results[i].update({"error": str(e), "status": status_of(e)})
                    continue
                results[i].update(self._result(x, p, started, include_input, score=score))
        return results

    def _result(
        self, x: np.ndarray, probs: np.ndarray, started: float, include_input: bool, extra: dict | None = None, score: float | None = None
    ) -> dict:
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
        if score is not None and (settings := ood_of(self.model.meta)):
            out["in_distribution"] = score <= settings["threshold"]
            out["ood_score"] = score
            if not out["in_distribution"]:
                out["verdict"] = verdict(score, self.model.meta)
        if include_input:
            out["input_png"] = base64.b64encode(to_png(x)).decode("ascii")
        out.update(extra or {})
        out["time_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return out
