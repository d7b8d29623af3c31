"""Step 1 of the tutorial: load the data and split off validation."""

from .dataset import SPLITS, Dataset, LabeledImages, load_dataset, load_split, train_val_split
from .idx import read_idx, write_idx
from .registry import DATASETS, DatasetSpec, get_spec

__all__ = ["DATASETS", "SPLITS", "Dataset", "load_split", "DatasetSpec", "LabeledImages", "get_spec", "load_dataset", "read_idx", "train_val_split", "write_idx"]
