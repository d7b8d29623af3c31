"""The learning-rate range test of a training configuration, before training it.

    fashion-cnn lr-find --data-dir ../shared/data/fashion-mnist -o lr.png          # the CLI face
    python -c "import fashion_cnn as fc; from fashion_cnn.experiment.lr_find import lr_find; print(lr_find(fc.TrainConfig()).suggestion)"

``lr_find`` reads a ``TrainConfig`` as ``train`` does (the dataset, the split, ``--limit``, the model, its
optimizer, batch size, loss and sampling) and runs ``fashion_cnn.training.lr_find.lr_range_test`` on a fresh
model seeded like the run's. It writes no run directory; the settings that only ``train`` uses (``--epochs``,
``--lr``, ``--schedule``, early stopping...) play no part.
"""

from __future__ import annotations

import torch

from ..data.loading import load_dataset
from ..devices import resolve_device, resolve_precision, set_threads
from ..models.registry import build_model
from ..training.augment import Augment
from ..training.class_weights import resolve_class_weights
from ..training.lr_find import RangeTest, lr_range_test
from .config import TrainConfig
from .train import train_and_val


def lr_find(config: TrainConfig, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 100) -> RangeTest:
    """The range test of ``config``'s training, from ``start_lr`` to ``end_lr`` over ``steps`` mini-batches.

    Example:
        >>> result = lr_find(TrainConfig(data_dir=toy_data, batch_size=16), steps=30)
        >>> len(result.lrs) <= 30, result.method
        (True, 'steepest descent')
    """
    config.validate()
    device = resolve_device(config.device)
    set_threads(config.threads)
    data = load_dataset(config.dataset, config.data_dir)
    train_set, _ = train_and_val(data, config)
    torch.manual_seed(config.seed)
    model = build_model(config.model, num_classes=len(data.classes), image_size=data.train.images.shape[1]).to(device)
    return lr_range_test(
        model,
        train_set,
        start_lr=start_lr,
        end_lr=end_lr,
        steps=steps,
        batch_size=config.batch_size,
        optimizer=config.optimizer,
        epsilon=config.adam_epsilon,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        seed=config.seed,
        precision=resolve_precision(config.precision, device),
        augment=Augment(config.shift, config.flip, config.erase),
        label_smoothing=config.label_smoothing,
        class_weight=resolve_class_weights(config.class_weight, train_set.labels, data.classes),
        balanced_sampling=config.balanced_sampling,
    )
