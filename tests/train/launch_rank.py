"""Entry point of one rank in the tests' ``mlx.launch`` runs: ``tbn-train`` or ``tbn-dapt`` (the first
argument) with two test hooks.

``TBN_TEST_PID_DIR``: write this rank's pid to ``rank-<R>.pid`` there (so a test can kill one rank).
``TBN_TEST_RANK1_ARGS``: extra arguments for rank 1 only (a rank started with different settings).
"""

import os
import sys
from pathlib import Path

rank = os.environ.get("MLX_RANK", "0")
if os.environ.get("TBN_TEST_PID_DIR"):
    Path(os.environ["TBN_TEST_PID_DIR"], f"rank-{rank}.pid").write_text(str(os.getpid()))
prog, *args = sys.argv[1:]
if rank == "1" and os.environ.get("TBN_TEST_RANK1_ARGS"):
    args += os.environ["TBN_TEST_RANK1_ARGS"].split()
if prog == "tbn-dapt":
    from dapt.cli import main
else:
    from tbn_train.cli import main
sys.exit(main(args))
