"""Which not-clothing score: the candidates side by side on one model, and the shipped one's table (bench/ood.md).

    fashion-cnn train --data-dir ../shared/data/fashion-mnist --name tutorial       # the Quick-start model
    python bench/ood.py runs/tutorial --data-dir ../shared/data/fashion-mnist      # writes bench/ood.md

In-distribution = the 10,000 test images; the others = the sets of ``fashion_cnn.data.ood_sets``. Every score
is fitted on the training split (means, covariances, prototypes) and thresholded on the validation split; the
test split and the other sets are only scored. Candidates (higher = less like clothing):

- ``msp``: 1 − the maximum softmax probability (Hendrycks & Gimpel 2017, the baseline);
- ``energy``: −logsumexp of the logits (Liu et al. 2020);
- ``mahalanobis``: the smallest class-conditional Mahalanobis distance of the penultimate features, one shared
  covariance (Lee et al. 2018); ``relative-mahalanobis``: minus the distance to one Gaussian of all of them (Ren et al. 2021);
- ``knn-penultimate``: cosine distance to the nearest training image, penultimate features only (Sun et al. 2022);
- ``knn-prototypes``: what fashion-cnn ships (``inference.ood``): penultimate + feature-map mean and max, to the
  nearest of 50 k-means prototypes per class.

Also: the photo-like garments of ``bench/robustness.py`` (test images as JPEG "photos", through the photo
preprocessing): the share the shipped score keeps as clothing, and their accuracy.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import fashion_cnn as fc  # noqa: E402
from fashion_cnn.data.images import load_image  # noqa: E402
from fashion_cnn.data.ood_sets import ood_set  # noqa: E402
from fashion_cnn.environment import cpu_name  # noqa: E402
from fashion_cnn.inference.ood import distance, fit_detector, logits_and_features, predict_with_scores, scores_of, separation  # noqa: E402
from photolike import photo_like  # noqa: E402

SETS = ("digits", "uniform", "gaussian", "flipped", "photos", "photo-crops")
PHOTO_LIKE = 1000


def candidates(model, train, val):
    """name → function(images) → scores, each fitted on ``train`` (and nothing else)."""
    ytr = np.asarray(train.labels)
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]

    def penultimate_and_logits(images):
        got = []
        hook = lin.register_forward_pre_hook(lambda m, a: got.append(a[0].detach().float()))
        try:
            logits, _ = logits_and_features(model, images)
        finally:
            hook.remove()
        return torch.cat(got).numpy().astype(np.float64), logits

    f_tr, _ = penultimate_and_logits(train.images)
    means = np.stack([f_tr[ytr == c].mean(0) for c in range(means_count(ytr))])
    centred = f_tr - means[ytr]
    precision = np.linalg.inv(centred.T @ centred / len(f_tr) + 1e-6 * np.eye(f_tr.shape[1]))
    mean0 = f_tr.mean(0)
    precision0 = np.linalg.inv(np.cov(f_tr, rowvar=False, bias=True) + 1e-6 * np.eye(f_tr.shape[1]))
    bank = torch.nn.functional.normalize(torch.from_numpy(f_tr).float(), dim=1)

    def class_distances(f):
        return np.stack([np.einsum("ij,jk,ik->i", f - m, precision, f - m) for m in means], 1)

    def msp(x):
        return 1 - penultimate_and_logits(x)[1].softmax(1).amax(1).numpy()

    def energy(x):
        return -torch.logsumexp(penultimate_and_logits(x)[1], 1).numpy()

    def mahalanobis(x):
        return class_distances(penultimate_and_logits(x)[0]).min(1)

    def relative(x):
        f = penultimate_and_logits(x)[0]
        d0 = np.einsum("ij,jk,ik->i", f - mean0, precision0, f - mean0)
        return (class_distances(f) - d0[:, None]).min(1)

    def knn_penultimate(x):
        f = torch.nn.functional.normalize(torch.from_numpy(penultimate_and_logits(x)[0]).float(), dim=1)
        return torch.cat([distance(f[i : i + 2000], bank) for i in range(0, len(f), 2000)]).numpy()

    fit_detector(model, train, val)  # the shipped one: sets model.ood_prototypes

    def shipped(x):
        return distance(logits_and_features(model, x)[1], model.ood_prototypes).numpy()

    return {
        "msp": msp,
        "energy": energy,
        "mahalanobis": mahalanobis,
        "relative-mahalanobis": relative,
        "knn-penultimate": knn_penultimate,
        "knn-prototypes (shipped)": shipped,
    }


def means_count(labels) -> int:
    return int(labels.max()) + 1


def photo_like_inputs(test, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` test images as photo-like JPEGs, preprocessed as ``predict photo.jpg`` does, and their labels."""
    rng = np.random.default_rng(0)
    images = [load_image(photo_like(test.images[i], rng)) for i in range(n)]
    return np.stack(images), np.asarray(test.labels[:n])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a run directory or model file (tutorial-cnn)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=str(Path(__file__).with_name("ood.md")))
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = fc.load_model(args.run)
    train = fc.load_split("train", data_dir=args.data_dir)
    val = fc.load_split("val", data_dir=args.data_dir)
    test = fc.load_split("test", data_dir=args.data_dir)
    started = time.perf_counter()
    scores = candidates(model, train, val)
    sets = {name: ood_set(name, test.images) for name in SETS}
    correct = fc.predict_proba(model, test.images).argmax(1) == np.asarray(test.labels)
    table = {}
    for method, score in scores.items():
        threshold = float(np.quantile(score(val.images), 0.95, method="higher"))
        inside = score(test.images)
        table[method] = {name: separation(inside, score(x), threshold, correct) for name, x in sets.items()}
        print(method, {k: round(v["auroc"], 4) for k, v in table[method].items()}, flush=True)
    threshold = model.meta["ood"]["threshold"]
    photos, labels = photo_like_inputs(test, PHOTO_LIKE)
    probs, _ = predict_with_scores(model, photos)
    photo_scores = scores_of(model, photos)
    kept = photo_scores <= threshold
    photo_row = {"kept": float(kept.mean()), "accuracy": float((probs.argmax(1) == labels).mean())}
    seconds = time.perf_counter() - started
    where = f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 inference"
    command = f"python bench/ood.py {args.run} --data-dir {args.data_dir}"
    lines = [
        "# Not-clothing score: candidates side by side",
        "",
        f"`{command}` ({where}; {seconds:.0f} s). In-distribution: the 10,000 test images;",
        "each score fitted on the training split, its threshold the one keeping 95% of validation.",
        f"Model test accuracy {correct.mean():.4f}.",
        "",
        "AUROC / FPR at 95% TPR (the share of the other images passing as clothing when 95% of the test images are kept):",
        "",
        "| score | " + " | ".join(SETS) + " |",
        "|---|" + "---|" * len(SETS),
    ]
    for method, rows in table.items():
        cells = [f"{rows[s]['auroc']:.3f} / {rows[s]['fpr_at_95_tpr']:.1%}" for s in SETS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    shipped = table["knn-prototypes (shipped)"]
    first = shipped[SETS[0]]
    lines += [
        "",
        f"The shipped score at its own threshold ({threshold:.4f}): keeps {first['kept']:.1%} of the test images, "
        f"accuracy on those {first['accuracy_kept']:.4f} (all: {correct.mean():.4f}); the predictions themselves do not change.",
        f"Photo-like garments ({PHOTO_LIKE} test images as JPEG photos, bench/photolike.py, through the photo preprocessing): "
        f"{photo_row['kept']:.1%} kept as clothing, accuracy {photo_row['accuracy']:.4f}.",
        "",
        "Anchors, Fashion-MNIST against MNIST (Ren et al. 2019): max-softmax 0.734, ODIN 0.752, Mahalanobis 0.942, likelihood ratio 0.994.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    print(platform.node(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
