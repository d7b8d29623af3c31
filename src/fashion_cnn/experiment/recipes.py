"""Named recipes: the settings of a training run worth repeating, as plain values (like nanoGPT's config/).

    fashion-cnn train --recipe fast                      # every value is printed first; any flag overrides it
    fashion-cnn train --recipe best-small --epochs 10    # the recipe, shorter
    fc.train(fc.TrainConfig.from_recipe("fast", data_dir="../shared/data/fashion-mnist"))

What each reached on this repository's 2-core machine, and the command, is in the README's table (measured by
``python bench/recipes.py``). A recipe lists only what differs from the tutorial's defaults (``TrainConfig``).
They use every image of the 48,000 training images and keep the tutorial's 12,000 for validation; they train a
fixed number of epochs (a schedule that anneals to its end: patience as long as the run).
"""

from __future__ import annotations

from ..errors import FashionCNNError

RECIPES: dict[str, dict] = {
    # The Keras tutorial: Adam 1e-3, batch 32, up to 20 epochs, early stopping with patience 2.
    "tutorial": {},
    # The tutorial's architecture to ≥ 0.910 in the least time: large batches, a one-cycle rate, 6 epochs.
    "fast": {"batch_size": 256, "epochs": 6, "lr": 6e-3, "schedule": "onecycle", "patience": 6, "label_smoothing": 0.05},
    # The tutorial's architecture with augmentation and a longer, annealed schedule (30 epochs reached 0.928, 60 reach 0.934).
    "tutorial-aug": {
        "batch_size": 128,
        "epochs": 60,
        "lr": 3e-3,
        "schedule": "onecycle",
        "patience": 60,
        "shift": 2,
        "flip": True,
        "erase": 0.3,
        "label_smoothing": 0.05,
        "tta": True,
    },
    # The best accuracy under 1 M parameters in about 10 minutes on 2 cores.
    "best-small": {
        "model": "compact-cnn",
        "batch_size": 128,
        "epochs": 16,
        "lr": 4e-3,
        "schedule": "onecycle",
        "optimizer": "adamw",
        "weight_decay": 5e-4,
        "patience": 16,
        "shift": 2,
        "flip": True,
        "erase": 0.3,
        "label_smoothing": 0.1,
        "ema": 0.999,
        "tta": True,
    },
    # The best accuracy in about an hour on 2 cores: a small ResNet, SGD with Nesterov momentum, cosine decay.
    "best": {
        "model": "resnet-small",
        "batch_size": 128,
        "epochs": 36,
        "lr": 0.1,
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "warmup_epochs": 1,
        "patience": 36,
        "shift": 2,
        "flip": True,
        "erase": 0.5,
        "label_smoothing": 0.1,
        "ema": 0.999,
        "tta": True,
    },
}


def check_recipe(name: str) -> None:
    if name not in RECIPES:
        raise FashionCNNError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")


def recipe_values(name: str) -> dict:
    """The settings recipe ``name`` sets, with its name (``recipe``) among them.

    Example:
        >>> recipe_values("fast")["schedule"], recipe_values("tutorial")
        ('onecycle', {'recipe': 'tutorial'})
    """
    check_recipe(name)
    return {**RECIPES[name], "recipe": name}
