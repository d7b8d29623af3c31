"""``python -m fashion_cnn ...`` is ``fashion-cnn ...`` (and what ``torchrun -m fashion_cnn`` runs)."""

from .cli import command

raise SystemExit(command())
