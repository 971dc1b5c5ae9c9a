"""tbn_train: MLX infrastructure for the TBN self-play trainer (§9.3.9–§9.3.13).

Importing the package preloads the system OpenBLAS (see :mod:`tbn_train.blas`) before any
submodule imports ``mlx.core``; the package itself imports no MLX.
"""

from tbn_train.blas import preload_openblas as _preload_openblas

_preload_openblas()
