"""``fashion-cnn embedding``: a split's images mapped to 2-D by the model's penultimate features, and the
images the model finds most like one of them.

    fashion-cnn embedding runs/NAME                                   # embedding.png: 2,000 test images, t-SNE
    fashion-cnn embedding runs/NAME --method pca --limit 10000        # all of them, PCA (instant)
    fashion-cnn embedding runs/NAME --neighbours-of 0 --lang ko       # + neighbours.png: test[0] and its 8 nearest

See ``fashion_cnn.inspection.embedding``. The map also reports how well the classes separate in it: the
accuracy of a 5-nearest-neighbour vote in the 2-D map (5-fold cross-validated).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.types import SPLITS
from ..errors import FashionCNNError
from ..inspection.embedding import METHODS, embeddings, nearest_neighbours, project_2d
from ..inspection.figures import check_format, save_figure
from ..inspection.inside import plot_embedding
from ..inspection.plots import plot_images
from ..models.files import load_model
from ..models.metadata import class_names
from .common import add_data_args, add_dpi_arg, add_json_arg, add_lang_arg, model_split, print_json, use_agg, wrote

#: t-SNE's cost grows faster than linearly: 2,000 images take ~5 s here, 10,000 about a minute.
DEFAULT_LIMIT = 2000


def register(sub) -> None:
    p = sub.add_parser("embedding", help="map a split's images to 2-D by what the model sees in them; nearest neighbours of one")
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("--split", choices=SPLITS, default="test", help="which split (default: test)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"the first N images of the split (default: {DEFAULT_LIMIT:,})")
    p.add_argument("--method", choices=METHODS, default="tsne", help="t-SNE (keeps neighbourhoods; default) or PCA (instant)")
    p.add_argument("--neighbours-of", type=int, metavar="INDEX", help="mark this image and its nearest neighbours, and draw them")
    p.add_argument("-k", type=int, default=8, help="how many neighbours (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="the projection's random seed (default: 0)")
    add_lang_arg(p)
    add_data_args(p, dataset_default=None)
    p.add_argument(
        "-o", "--output", default="embedding.png", help="image file (default: embedding.png; neighbours go to NAME-neighbours.png)"
    )
    add_dpi_arg(p)
    add_json_arg(p)
    p.set_defaults(run=run)


def class_separation(points: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a 5-nearest-neighbour vote in the map, 5-fold cross-validated: how well the classes separate."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    counts = np.bincount(labels)
    folds = min(5, int(counts.max()), len(labels) // 6)  # each fold's training part keeps 5 neighbours to vote
    if folds < 2:
        return float("nan")
    # Stratified folds where every class present can be in each; else (a few images of a rare class: --limit 60)
    # shuffled folds, rather than scikit-learn's warning about the least populated class.
    cv = folds if counts[counts > 0].min() >= folds else KFold(folds, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(5), points, labels, cv=cv).mean())


def run(args) -> int:
    check_format(args.output)
    if args.limit < 3:
        raise FashionCNNError(f"--limit must be at least 3 images, got {args.limit}")
    if not 0 <= args.seed < 2**32:
        raise FashionCNNError(f"--seed must be from 0 to 2**32 - 1, got {args.seed}")
    model = load_model(args.model_or_run)
    data = model_split(model, args.split, args.dataset, args.data_dir, source=args.model_or_run)
    n = min(args.limit, len(data))
    images, labels = data.images[:n], np.asarray(data.labels[:n])
    if args.neighbours_of is not None and not 0 <= args.neighbours_of < n:
        raise FashionCNNError(f"--neighbours-of {args.neighbours_of} is out of range: the map holds {args.split} images 0 to {n - 1}")
    features = embeddings(model, images)
    points = project_2d(features, args.method, args.seed)
    names = class_names(model.meta, args.lang)
    near = nearest_neighbours(features, args.neighbours_of, args.k) if args.neighbours_of is not None else None
    separation = class_separation(points, labels)
    use_agg()
    title = f"{args.split}, {n:,} images, {'t-SNE' if args.method == 'tsne' else 'PCA'} of the penultimate layer"
    fig = plot_embedding(points, labels, names, images=images, highlight=args.neighbours_of, neighbours=near, title=title)
    paths = [save_figure(fig, args.output, args.dpi)]
    if near is not None:
        out = Path(args.output)
        order = [args.neighbours_of, *near.tolist()]
        captions = [f"{'this' if i == args.neighbours_of else i}\n{names[int(labels[i])]}" for i in order]
        gallery = plot_images(
            images[order],
            captions,
            rows=1,
            cols=len(order),
            suptitle=f"{args.split}[{args.neighbours_of}] and the images the model finds most alike",
        )
        paths.append(save_figure(gallery, out.with_name(out.stem + "-neighbours" + out.suffix), args.dpi))
    if args.json:
        print_json(
            {
                "written": [str(p) for p in paths],
                "images": n,
                "method": args.method,
                "knn_accuracy_2d": round(separation, 4),
                "neighbours": None if near is None else near.tolist(),
            }
        )
        return 0
    print(
        f"{n:,} {args.split} images, {features.shape[1]} features each, mapped by {args.method}: a 5-NN vote in the map is right for {separation:.1%}"
    )
    if near is not None:
        print(
            f"nearest to {args.split}[{args.neighbours_of}] ({names[int(labels[args.neighbours_of])]}): "
            + ", ".join(f"{i} ({names[int(labels[i])]})" for i in near)
        )
    wrote(paths)
    return 0
