"""Where a model goes wrong: predictions on a split, per-class precision / recall / F1, the confusion
matrix and the top losses (the most confidently wrong images).

    fashion-cnn evaluate runs/tutorial --split test --report --top-losses 16

Python::

    result = analyze(model, load_split("test", data_dir=...), model.meta["classes"], split="test")
    result.accuracy, result.confusion[8, 8], result.top_losses(5)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from torch import nn

from ..data.types import LabeledImages
from ..errors import FashionCNNError
from ..inference.predict import predict_proba
from ..models.metadata import class_names
from ..terminal import rjust, width

#: The most images a top-losses picture shows.
MAX_TOP_LOSSES = 256


@dataclass(frozen=True, eq=False)
class Analysis:
    """A model's probabilities on one split, with the numbers a practitioner looks at next.

    Args:
        data: the split's images and true labels.
        probs: (N, classes) predicted probabilities.
        names: class names in label order.
        split: the split's name, for titles (``val``, ``test``...).
    """

    data: LabeledImages
    probs: np.ndarray
    names: tuple[str, ...]
    split: str = "test"

    @property
    def labels(self) -> np.ndarray:
        return self.data.labels

    @cached_property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean()) if len(self.labels) else float("nan")

    @cached_property
    def losses(self) -> np.ndarray:
        """Each image's cross-entropy, -log p(true class)."""
        p_true = self.probs[np.arange(len(self.labels)), self.labels]
        return -np.log(np.clip(p_true, 1e-12, None))

    @cached_property
    def confusion(self) -> np.ndarray:
        """(classes, classes) counts: row = true class, column = predicted class."""
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.labels, self.predicted, labels=np.arange(len(self.names)))

    @cached_property
    def per_class(self) -> list[dict]:
        """One row per class: name, precision, recall, f1, support (scikit-learn's definitions)."""
        from sklearn.metrics import precision_recall_fscore_support

        p, r, f, s = precision_recall_fscore_support(self.labels, self.predicted, labels=np.arange(len(self.names)), zero_division=0)
        return [
            {"class": name, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(self.names)
        ]

    @cached_property
    def averages(self) -> dict[str, dict]:
        """Macro and support-weighted averages of precision, recall and F1."""
        from sklearn.metrics import precision_recall_fscore_support

        out = {}
        for avg in ("macro", "weighted"):
            p, r, f, _ = precision_recall_fscore_support(
                self.labels, self.predicted, labels=np.arange(len(self.names)), average=avg, zero_division=0
            )
            out[avg] = {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(len(self.labels))}
        return out

    def top_losses(self, n: int) -> np.ndarray:
        """Indices of the ``n`` images with the highest loss, highest first: the most confidently wrong."""
        if not 0 <= n <= MAX_TOP_LOSSES:
            raise FashionCNNError(f"--top-losses must be from 0 to {MAX_TOP_LOSSES} (a picture of more shows nothing), got {n}")
        return np.argsort(-self.losses, kind="stable")[:n]

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "images": int(len(self.labels)),
            "accuracy": self.accuracy,
            "per_class": self.per_class,
            "averages": self.averages,
            "confusion": self.confusion.tolist(),
        }

    def report_text(self) -> str:
        """The per-class table as text, like scikit-learn's ``classification_report``."""
        cells = width([*self.names, "weighted avg"])
        lines = [f"{'':>{cells}}  precision     recall   f1-score    support", ""]
        for row in self.per_class:
            lines.append(
                f"{rjust(row['class'], cells)}  {row['precision']:>9.4f}  {row['recall']:>9.4f}  {row['f1']:>9.4f}  {row['support']:>9,}"
            )
        lines.append("")
        lines.append(f"{'accuracy':>{cells}}  {'':>9}  {'':>9}  {self.accuracy:>9.4f}  {len(self.labels):>9,}")
        for name, avg in self.averages.items():
            lines.append(
                f"{name + ' avg':>{cells}}  {avg['precision']:>9.4f}  {avg['recall']:>9.4f}  {avg['f1']:>9.4f}  {avg['support']:>9,}"
            )
        return "\n".join(lines)


def analyze(model: nn.Module, data: LabeledImages, names=None, split: str = "test", probs: np.ndarray | None = None) -> Analysis:
    """Predict every image of ``data`` and wrap the result in an ``Analysis``.

    Args:
        model: a trained model.
        data: a split, e.g. ``load_split("test", ...)``.
        names: class names in label order (default: the model's ``meta["classes"]``).
        split: the split's name, used in titles.
        probs: the model's probabilities on ``data`` when the caller has them already (the final evaluation's),
            so the split is not predicted a second time.
    """
    probs = predict_proba(model, data.images) if probs is None else probs
    if names is None:
        names = class_names(getattr(model, "meta", {}), count=probs.shape[1])
    if probs.shape[1] != len(names):
        raise FashionCNNError(
            f"the model predicts {probs.shape[1]} classes but {len(names)} class names were given; pass the names of the dataset it was trained on"
        )
    return Analysis(data, probs, tuple(names), split)
