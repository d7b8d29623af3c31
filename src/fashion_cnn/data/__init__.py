"""Step 1 of the tutorial: load the data and split off validation.

types.py      LabeledImages, Dataset, the split: what the rest of fashion-cnn receives
idx.py        the IDX file format (read, write)
fetch.py      find a dataset's files: --data-dir, the cache, or a checked download
registry.py   the datasets by name (fashion-mnist, mnist, kmnist, folder:PATH)
folder.py     your own images, one folder per class
images.py     decode a picture and make it look like Fashion-MNIST
transforms.py the per-batch scaling x / 255 and the model input's description
sampling.py   each epoch's order: balanced sampling (--balanced-sampling), class counts
loading.py    load_dataset, load_split
"""

from .idx import read_idx, write_idx
from .loading import load_dataset, load_split
from .registry import DATASETS, DatasetSpec, get_spec
from .types import SPLITS, Dataset, DatasetSource, LabeledImages, train_val_split

__all__ = [
    "DATASETS",
    "SPLITS",
    "Dataset",
    "DatasetSource",
    "DatasetSpec",
    "LabeledImages",
    "get_spec",
    "load_dataset",
    "load_split",
    "read_idx",
    "train_val_split",
    "write_idx",
]
