"""The architecture diagram, like Keras' ``plot_model``: one box per layer, top to bottom.

    fashion-cnn plot-model --show-shapes -o cnn-architecture.png          # a fresh tutorial-cnn
    fashion-cnn plot-model runs/tutorial --show-shapes --dpi 300 -o cnn-architecture.svg

Each box names the layer and its type (with its parameter count); with ``show_shapes`` it also shows the
input and output shapes, channels-last as Keras prints them. The boxes come from
``models.summary.layer_table``, so every registered architecture can be drawn.
"""

from __future__ import annotations

from torch import nn

from ..models.summary import LayerInfo, layer_table
from .figures import new_figure

PT = 1 / 72  # the drawing is laid out in inches; font sizes are in points
NAME_SIZE, TYPE_SIZE, LABEL_SIZE, SHAPE_SIZE, TITLE_SIZE = 11.5, 9, 7.5, 9, 12
PAD, GAP, COLUMN_GAP = 12 * PT, 26 * PT, 30 * PT
#: (fill, edge) colours by a word in the layer's type; the first match wins.
PALETTE = (
    ("Conv", ("#dbeafe", "#2563eb")),
    ("Pool", ("#dcfce7", "#16a34a")),
    ("Flatten", ("#f3e8ff", "#9333ea")),
    ("Reshape", ("#f3e8ff", "#9333ea")),
    ("Dense", ("#ffedd5", "#ea580c")),
    ("Linear", ("#ffedd5", "#ea580c")),
    ("Dropout", ("#f1f5f9", "#64748b")),
    ("Norm", ("#fef9c3", "#ca8a04")),
)
OTHER = ("#ccfbf1", "#0d9488")
INK, MUTED = "#0f172a", "#475569"


def layer_colours(layer_type: str) -> tuple[str, str]:
    return next((c for word, c in PALETTE if word.lower() in layer_type.lower()), OTHER)


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _text_width(text: str, size: float, weight: str = "normal", family: str = "sans-serif") -> float:
    """Width of ``text`` in inches, measured with the font matplotlib will draw it in."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(size=size, weight=weight, family=family)
    return TextToPath().get_text_width_height_descent(text, prop, ismath=False)[0] * PT


def plot_model(model: nn.Module, show_shapes: bool = False, *, input_shape: tuple[int, int, int] | None = None, title: str | None = None):
    """Draw ``model``'s layers as connected boxes and return the matplotlib ``Figure``.

    Args:
        model: any registered architecture (``build_model(name)``) or a loaded model.
        show_shapes: add each layer's input and output shape, as Keras' ``show_shapes=True``.
        input_shape: (C, H, W) of the dummy image used to trace shapes (default from the model).
        title: the heading (default: the architecture name and its parameter count).

    Each layer box has the gid ``layer:<name>`` and each arrow the gid ``edge``.

    Example:
        >>> fig = plot_model(build_model("tutorial-cnn"), show_shapes=True)
        >>> save_figure(fig, "cnn-architecture.png", dpi=300).stat().st_size > 10_000
        True
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    rows = layer_table(model, input_shape)
    total = sum(r.params for r in rows)
    if title is None:
        name = getattr(model, "arch", {}).get("name", type(model).__name__)
        title = f"{name} · {total:,} parameters"

    def subtitle(r: LayerInfo) -> str:
        return f"{r.type} · {r.params:,} params" if r.params else r.type

    # Every box gets the width of the widest content, so the column of boxes is straight.
    shape_col = (
        max(
            [_text_width(_shape(s), SHAPE_SIZE, family="monospace") for r in rows for s in (r.input_shape, r.output_shape)]
            + [_text_width("Output shape", LABEL_SIZE)]
        )
        if show_shapes
        else 0.0
    )
    box_w = (
        max(
            [_text_width(r.name, NAME_SIZE, "bold") for r in rows]
            + [_text_width(subtitle(r), TYPE_SIZE) for r in rows]
            + [2 * shape_col + COLUMN_GAP]
        )
        + 2 * PAD
    )
    # Vertical layout of one box, from its top edge down (in inches).
    name_dy = 0.7 * PAD
    type_dy = name_dy + 1.25 * NAME_SIZE * PT
    head_h = type_dy + 1.3 * TYPE_SIZE * PT + 0.5 * PAD
    label_dy = head_h + 6 * PT
    shape_dy = label_dy + (1.3 * LABEL_SIZE + 2) * PT
    box_h = shape_dy + 1.3 * SHAPE_SIZE * PT + 0.6 * PAD if show_shapes else head_h + 0.2 * PAD
    title_h = (TITLE_SIZE + 14) * PT
    margin = 0.15
    width = max(box_w, _text_width(title, TITLE_SIZE, "bold")) + 2 * margin
    height = len(rows) * box_h + (len(rows) - 1) * GAP + title_h + 2 * margin

    fig = new_figure(width, height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    cx = width / 2
    ax.text(cx, height - margin, title, ha="center", va="top", fontsize=TITLE_SIZE, weight="bold", color=INK)

    top = height - margin - title_h
    for i, r in enumerate(rows):
        fill, edge = layer_colours(r.type)
        left, bottom = cx - box_w / 2, top - box_h
        box = FancyBboxPatch(
            (left, bottom),
            box_w,
            box_h,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=fill,
            edgecolor=edge,
            linewidth=1.4,
            gid=f"layer:{r.name}",
        )
        ax.add_patch(box)
        ax.text(cx, top - name_dy, r.name, ha="center", va="top", fontsize=NAME_SIZE, weight="bold", color=INK)
        ax.text(cx, top - type_dy, subtitle(r), ha="center", va="top", fontsize=TYPE_SIZE, color=MUTED)
        if show_shapes:
            ax.plot([left, left + box_w], [top - head_h] * 2, color=edge, linewidth=0.8, alpha=0.6)
            ax.plot([cx, cx], [top - head_h, bottom], color=edge, linewidth=0.8, alpha=0.6)
            for x, label, shape in ((cx - box_w / 4, "Input shape", r.input_shape), (cx + box_w / 4, "Output shape", r.output_shape)):
                ax.text(x, top - label_dy, label, ha="center", va="top", fontsize=LABEL_SIZE, color=MUTED)
                ax.text(x, top - shape_dy, _shape(shape), ha="center", va="top", fontsize=SHAPE_SIZE, family="monospace", color=INK)
        if i + 1 < len(rows):
            ax.add_patch(
                FancyArrowPatch(
                    (cx, bottom),
                    (cx, bottom - GAP),
                    arrowstyle="-|>",
                    mutation_scale=14,
                    color="#334155",
                    linewidth=1.3,
                    shrinkA=1,
                    shrinkB=1,
                    gid="edge",
                )
            )
        top = bottom - GAP
    return fig
