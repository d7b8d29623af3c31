"""The pictures of "looking inside the CNN": filters, weight histograms, feature maps, Grad-CAM, the embedding map.

    fashion-cnn filters runs/tutorial --untrained                  # filters.png: trained vs fresh, + histogram
    fashion-cnn feature-maps runs/tutorial --split train --index 10148   # the book's ankle boot through conv2d (4×8)
    fashion-cnn gradcam runs/tutorial --split test --index 0       # gradcam.png: input, Grad-CAM, saliency
    fashion-cnn embedding runs/tutorial --neighbours-of 0          # embedding.png, neighbours.png

Each function returns a matplotlib Figure (inline in a notebook; ``save_figure`` writes it); the numbers come
from ``internals``, ``attribution`` and ``embedding``. Korean class names are drawn with NanumGothic.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import FashionCNNError
from .attribution import Attribution
from .figures import new_figure
from .fonts import font_for
from .internals import weight_stats
from .plots import INK, _font, _percent

#: The book's fixed colour range for first-layer filters: strong weights of either sign stand out.
FILTER_RANGE = 0.5
TRAINED, UNTRAINED = "#2563eb", "#94a3b8"


def _grid(n: int, cols: int) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def mosaic(tiles: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    """Tiles (n, h, w) laid out ``cols`` a row with ``gap`` pixels between them, as one float array; the gaps and
    the empty cells of the last row are NaN (drawn as the background). One image in one axes draws many times
    faster than one axes per tile.

    Example:
        >>> mosaic(np.ones((3, 2, 2)), cols=2).shape                  # 2 rows of 2 cells of 2×2, 1-pixel gaps
        (5, 5)
    """
    n, h, w = tiles.shape
    rows, cols = _grid(n, cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return out


def _cmap(name: str, gaps: str = "white"):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=gaps)  # bad: the mosaic's gaps


def _filter_rows(fig, kernel: np.ndarray, label: str, input_channel: int, limit: float, cols: int = 16) -> None:
    """Draw one kernel's filters as a grid into ``fig`` (a Figure or SubFigure), with its colour bar."""
    stats = weight_stats(kernel)
    fig.suptitle(f"{label}: mean {stats['mean']:+.4f}, std {stats['std']:.4f}", fontsize=10, color=INK, x=0.02, ha="left")
    ax = fig.add_subplot()
    image = ax.imshow(mosaic(kernel[:, input_channel], cols, gap=1), cmap=_cmap("RdBu_r", gaps="#cbd5e1"), vmin=-limit, vmax=limit)
    ax.set_axis_off()
    ax.set_gid(f"filters:{len(kernel)}:{min(cols, len(kernel))}")
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01, aspect=8, label="weight")


def _check_kernel(kernel, input_channel: int) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 4 or len(kernel) == 0:
        raise FashionCNNError(f"a convolution kernel is (out, in, h, w), got shape {kernel.shape}")
    if not 0 <= input_channel < kernel.shape[1]:
        raise FashionCNNError(
            f"input channel {input_channel} is out of range: the kernel has {kernel.shape[1]} (0 to {kernel.shape[1] - 1})"
        )
    return kernel


def plot_filters(kernels, *, input_channel: int = 0, limit: float = FILTER_RANGE, title: str | None = None):
    """A convolution layer's filters as a grid (16 a row: the tutorial's 32 as 2×16, grey between them), in a fixed
    colour range (−``limit``…``limit``, red positive, blue negative), with a histogram of all their weights below.

    Args:
        kernels: a kernel (out, in, h, w) from ``conv_filters``, or ``{"trained": k1, "untrained": k2}`` to draw
            several one above the other, their histograms overlaid (the book's comparison).
        input_channel: which input channel's 2-D slice to draw (the first layer has only 0).
        limit: the colour range's half-width.
        title: the layer's name or a heading, written before each grid's label.

    Example:
        >>> kernel, _ = conv_filters(model)
        >>> fig = plot_filters({"trained": kernel, "untrained": conv_filters(build_model())[0]})
        >>> [ax.get_gid() for ax in fig.axes if ax.get_gid()]        # two grids of 32 filters, 16 a row
        ['filters:32:16', 'filters:32:16']
    """
    named = dict(kernels) if isinstance(kernels, dict) else {"filters": kernels}
    named = {label: _check_kernel(k, input_channel) for label, k in named.items()}
    heights = [max(0.9, 0.55 * _grid(len(k), 16)[0]) + 0.35 for k in named.values()]
    fig = new_figure(11.0, sum(heights) + 2.9)
    parts = fig.subfigures(len(named) + 1, 1, height_ratios=[*heights, 2.6])
    for part, (label, kernel) in zip(parts, named.items()):
        _filter_rows(part, kernel, f"{title} · {label}" if title else label, input_channel, limit)
    ax = parts[-1].add_subplot()
    low = min(float(k.min()) for k in named.values())
    high = max(float(k.max()) for k in named.values())
    bins = np.linspace(low, high, 41) if high > low else 40
    for (label, kernel), color in zip(named.items(), [TRAINED, UNTRAINED, "#ea580c", "#16a34a"] * 4):
        s = weight_stats(kernel)
        ax.hist(kernel.ravel(), bins=bins, alpha=0.6, color=color, label=f"{label}: mean {s['mean']:+.3f}, std {s['std']:.3f}")
    ax.set_xlabel("weight")
    ax.set_ylabel("count")
    # above the bars, in a row: never over them, and no search for the emptiest corner (matplotlib's loc="best"
    # tries every spot against every bar and warns when that takes over a second, as on a busy machine)
    ax.legend(fontsize=9, frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(len(named), 2), borderaxespad=0.2)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_feature_maps(maps, *, cols: int = 8, title: str | None = None, image=None, cmap: str = "viridis"):
    """One image's feature maps (channels, H, W) from ``layer_outputs`` as a grid, 8 a row (the book's 4×8 for
    ``conv2d``'s 32 maps, 8×8 for ``conv2d_1``'s 64), each in its own colour range, numbered; ``image``, when
    given, is drawn on the left.

    Example:
        >>> maps = layer_outputs(model, images[0], "conv2d")["conv2d"][0]
        >>> fig = plot_feature_maps(maps, title="conv2d")
        >>> [ax.get_gid() for ax in fig.axes]                          # 32 maps, 8 a row
        ['maps:32:8']
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) == 0:
        raise FashionCNNError(
            f"feature maps are (channels, H, W) for one image, got shape {maps.shape}; choose a convolution or pooling layer"
        )
    rows, cols = _grid(len(maps), cols)
    low, high = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    scaled = np.where(high > low, (maps - low) / np.where(high > low, high - low, 1), 0)  # each map in its own range
    h, w = maps.shape[1:]
    gap = max(2, h // 7)
    side = 2.0 if image is not None else 0.0
    fig = new_figure(side + cols * 1.1, rows * 1.2 + (0.5 if title else 0.1))
    if title:
        fig.suptitle(title, color=INK, **_font(title, size=11, bold=True))
    left, grid = fig.subfigures(1, 2, width_ratios=[side, cols * 1.1]) if image is not None else (None, fig)
    if left is not None:
        size = min(0.8, 1.6 / fig.get_figheight())  # a 1.6-inch square, centred beside the grid
        ax = left.add_axes((0.1, 0.5 - size / 2, 0.8, size))
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        ax.set_title("input", fontsize=9, color=INK)
        ax.set_gid("input")
        ax.set_xticks([])
        ax.set_yticks([])
    top = 1 - 0.6 / fig.get_figheight() if title else 1 - 0.25 / fig.get_figheight()
    ax = grid.add_axes((0.01, 0.02, 0.98, top - 0.02))
    ax.imshow(mosaic(scaled, cols, gap), cmap=_cmap(cmap), vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_gid(f"maps:{len(maps)}:{cols}")
    for k in range(len(maps)):  # each map's number above it
        r, c = divmod(k, cols)
        ax.text(c * (w + gap) + w / 2, r * (h + gap) - 0.5, str(k), ha="center", va="bottom", fontsize=7, color="#64748b")
    return fig


def plot_gradcam(image, cam: Attribution, class_names, saliency: Attribution | None = None):
    """The input, its Grad-CAM heatmap laid over it, and (when given) the saliency map: why the model gave
    ``cam.target``'s class its probability.

    Example:
        >>> fig = plot_gradcam(images[0], gradcam(model, images[0]), classes, saliency(model, images[0]))
        >>> [ax.get_gid() for ax in fig.axes if ax.get_gid()]
        ['input', 'gradcam', 'saliency']
    """
    image = np.asarray(image)
    name = str(class_names[cam.target])
    p = float(cam.probabilities[cam.target])
    top = int(np.argmax(cam.probabilities))
    panels = 3 if saliency is not None else 2
    fig = new_figure(2.6 * panels, 3.15)
    heading = f"why {name} ({_percent(p)})" if top == cam.target else f"why not {name} ({_percent(p)})? it says {class_names[top]}"
    fig.suptitle(heading, color=INK, **_font(heading, size=12, bold=True))
    ax = fig.add_subplot(1, panels, 1)
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
    ax.set_title("input", fontsize=9, color=INK)
    ax.set_gid("input")
    ax = fig.add_subplot(1, panels, 2)
    ax.imshow(image, cmap="gray", vmin=0, vmax=255)
    ax.imshow(cam.heatmap, cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    ax.set_title(f"Grad-CAM ({cam.layer})", fontsize=9, color=INK)
    ax.set_gid("gradcam")
    if saliency is not None:
        ax = fig.add_subplot(1, panels, 3)
        ax.imshow(saliency.heatmap, cmap="hot", vmin=0, vmax=1)
        ax.set_title("saliency |∂score/∂pixel|", fontsize=9, color=INK)
        ax.set_gid("saliency")
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_embedding(
    points, labels, class_names, *, images=None, thumbnails: int = 2, highlight: int | None = None, neighbours=None, title=None
):
    """The images as points of a 2-D map (``project_2d``), coloured by class, with ``thumbnails`` pictures per
    class at the point nearest its centre, and image ``highlight`` (a star) and its ``neighbours`` (circled).

    Example:
        >>> pts = project_2d(embeddings(model, images[:60]), "pca")
        >>> fig = plot_embedding(pts, labels[:60], classes)
        >>> len(fig.axes[0].collections[0].get_offsets())        # one point per image
        60
    """
    points, labels = np.asarray(points, dtype=np.float32), np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
        raise FashionCNNError(f"an embedding map needs points (N, 2) and N labels, got {points.shape} and {labels.shape}")
    import matplotlib

    colors = matplotlib.colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    fig = new_figure(8.6, 7.0)
    ax = fig.add_subplot()
    ax.scatter(points[:, 0], points[:, 1], c=[colors(int(c) % colors.N) for c in labels], s=6, alpha=0.7, linewidths=0)
    if images is not None and thumbnails > 0:
        from matplotlib.offsetbox import AnnotationBbox, OffsetImage

        images = np.asarray(images)
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            centre = points[members].mean(0)
            for i in members[np.argsort(((points[members] - centre) ** 2).sum(1))][:thumbnails]:
                box = OffsetImage(images[i], cmap="gray_r", zoom=0.9, norm=matplotlib.colors.Normalize(0, 255))
                frame = {"edgecolor": colors(int(c) % colors.N)}
                ax.add_artist(AnnotationBbox(box, points[i], frameon=True, pad=0.1, bboxprops=frame, zorder=3))
    if highlight is not None:
        ax.scatter(*points[highlight], marker="*", s=320, c="white", edgecolors=INK, linewidths=1.5, zorder=5, label="the image")
        if neighbours is not None and len(neighbours):
            near = points[np.asarray(neighbours)]
            ax.scatter(
                near[:, 0], near[:, 1], s=90, facecolors="none", edgecolors=INK, linewidths=1.2, zorder=4, label="nearest neighbours"
            )
    names = [str(n) for n in class_names]
    handles = [
        matplotlib.lines.Line2D([], [], marker="o", linestyle="", color=colors(k % colors.N), label=names[k])
        for k in range(len(names))
        if k in set(labels.tolist())
    ]
    legend_font = font_for(*names, size=9)
    ax.legend(
        handles=handles + [h for h in ax.get_legend_handles_labels()[0]],
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
        **({"prop": legend_font} if legend_font is not None else {"fontsize": 9}),
    )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, color=INK, **_font(title, size=12, bold=True))
    fig.tight_layout()
    return fig


def plot_gradcams(images, cams: list[Attribution], class_names, captions=None, cols: int = 4):
    """Several images, each with its Grad-CAM laid over it, captioned with the class explained (e.g. the top
    losses: why the model thought each was what it said).

    Example:
        >>> cams = [gradcam(model, im) for im in images[:3]]
        >>> len([ax for ax in plot_gradcams(images[:3], cams, classes).axes if ax.get_gid() == "gradcam"])
        3
    """
    images = np.asarray(images)
    if len(images) != len(cams) or len(images) == 0:
        raise FashionCNNError(f"one Grad-CAM per image is needed, got {len(images)} images and {len(cams)} maps")
    rows, cols = _grid(len(images), cols)
    fig = new_figure(cols * 2.1, rows * 2.55)
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(images):
            ax.set_axis_off()
            continue
        cam = cams[k]
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=255)
        ax.imshow(cam.heatmap, cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
        text = f"why {class_names[cam.target]} {_percent(float(cam.probabilities[cam.target]))}"
        if captions is not None:
            text = f"{captions[k]}\n{text}"
        ax.set_title(text, color=INK, **_font(text, size=8.5))
        ax.set_gid("gradcam")
    fig.tight_layout()
    return fig
