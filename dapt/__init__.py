"""dapt: the DAPT curricula (DFR, UHD, ADWC, length clusters) and the Rolling Recap trainer (§8, App. 29).

Importing the package first imports ``tbn_train``, which preloads the system OpenBLAS before any dapt
module imports ``mlx.core`` (tbn_train itself imports no MLX).
"""
import tbn_train  # noqa: F401
