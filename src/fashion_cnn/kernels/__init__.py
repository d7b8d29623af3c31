"""CPU kernels for the tutorial's conv → pool → ReLU blocks: a backend swapped into a model explicitly.

    fashion-cnn build-kernels                     # compile them now; say how the blocks will run
    fashion-cnn train --kernels off               # PyTorch's operators only (also: $FASHION_CNN_KERNELS=off)

    >>> import fashion_cnn as fc
    >>> model = fc.build_model()
    >>> fc.use_kernels(model).startswith(("fused kernel", "PyTorch operators"))
    True

``build`` compiles ``csrc/`` and keeps the library in the cache; ``ops`` holds the kernels as autograd functions
and when each computes a block exactly as PyTorch would; ``backend`` swaps them into a model. The C test harness
(a plain-C reference, the kernels against it under the sanitizers, a benchmark) is in ``harness/``.
"""

from .backend import MODES, disabled, remove_kernels, resolve_mode, use_kernels, uses_kernels
from .build import KernelBuildError, load

__all__ = ["MODES", "KernelBuildError", "disabled", "load", "remove_kernels", "resolve_mode", "use_kernels", "uses_kernels"]


def build() -> str:
    """Compile (or load from the cache) the kernels now; returns what was built, e.g. ``fused kernel (AVX2,
    OpenMP)``; raises ``KernelBuildError``, naming the compiler's log, where they do not build."""
    return load()[1]
