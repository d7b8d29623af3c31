"""``python -m fashion_cnn ...`` is ``fashion-cnn ...`` (and what ``torchrun -m fashion_cnn`` runs)."""

from .cli import main

raise SystemExit(main())
