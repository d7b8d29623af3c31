"""The images as the model sees them: its penultimate layer's outputs, mapped to 2-D, and nearest neighbours.

    fashion-cnn embedding runs/tutorial --split test --limit 2000             # embedding.png (t-SNE)
    fashion-cnn embedding runs/tutorial --method pca --neighbours-of 0        # and the images nearest test[0]

The features are the input of the model's last ``Linear`` layer (the tutorial's 100 ``dense`` units after
their ReLU): what the classifier draws its line through. Images the model finds alike lie close together
there; a 2-D map (t-SNE keeps neighbourhoods, PCA keeps the largest directions of spread) shows whether
the classes form separate clusters, and which ones overlap (shirts, T-shirts, pullovers and coats).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import FashionCNNError
from ..inference.predict import EVAL_BATCH
from .internals import model_input, run_hooked

METHODS = ("tsne", "pca")


def embeddings(model: nn.Module, images, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """The penultimate features of ``images``: the input of the model's last ``Linear`` layer, (N, features).

    Example:
        >>> embeddings(model, images[:5]).shape       # the tutorial's dense layer has 100 units
        (5, 100)
    """
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise FashionCNNError("the model has no Linear layer, so it has no penultimate features to map")
    x = model_input(model, images)
    got: list[torch.Tensor] = []
    hook = last[-1].register_forward_pre_hook(lambda module, args: got.append(args[0].detach().float().flatten(1).cpu()))
    run_hooked(model, x, [hook], batch_size)
    return torch.cat(got).numpy()


def project_2d(features: np.ndarray, method: str = "tsne", seed: int = 0, iterations: int = 1000) -> np.ndarray:
    """Map features (N, D) to 2-D points (N, 2) with scikit-learn's t-SNE (``tsne``) or PCA (``pca``).

    t-SNE (perplexity 30, PCA initialisation, ``iterations`` of gradient descent of which the first 250
    exaggerate the clusters) takes ~10 s for 2,000 images on 2 cores and grows faster than linearly; PCA is
    instant. Both are seeded, so the same images give the same map.

    Example:
        >>> project_2d(np.random.default_rng(0).normal(size=(50, 8)), "pca").shape
        (50, 2)
    """
    if method not in METHODS:
        raise FashionCNNError(f"unknown projection {method!r}; choose one of: {', '.join(METHODS)}")
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) < 3:
        raise FashionCNNError(f"a 2-D map needs at least 3 images' features (N, D), got shape {features.shape}")
    if method == "pca":
        from sklearn.decomposition import PCA

        points = PCA(n_components=2, random_state=seed).fit_transform(features)
    else:
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(features) - 1) / 3)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=max(int(iterations), 250))
        points = tsne.fit_transform(features)
    return points.astype(np.float32)


def nearest_neighbours(features: np.ndarray, index: int, k: int = 8) -> np.ndarray:
    """The indices of the ``k`` images whose features are closest (cosine distance) to image ``index``'s,
    nearest first, itself left out: "images the model finds similar".

    Example:
        >>> f = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.05]])
        >>> nearest_neighbours(f, 0, k=2).tolist()
        [3, 1]
    """
    from sklearn.neighbors import NearestNeighbors

    features = np.asarray(features, dtype=np.float32)
    if not 0 <= index < len(features):
        raise FashionCNNError(f"image {index} is out of range: there are {len(features):,} images (0 to {len(features) - 1})")
    if not 1 <= k < len(features):
        raise FashionCNNError(f"k must be from 1 to {len(features) - 1} (the other images), got {k}")
    nn_index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(features)
    _, found = nn_index.kneighbors(features[index : index + 1])
    return np.array([i for i in found[0] if i != index][:k])
