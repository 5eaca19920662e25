"""One place that seeds every random number generator the project uses."""
import os
import random
import sys

import numpy as np


def seed_everything(seed):
    """Seed Python, NumPy, and TensorFlow / torch when they are already imported; TensorFlow's
    ops are made deterministic too (``tf.config.experimental.enable_op_determinism``).

    The frameworks are seeded only if the caller imported them, so the Keras side
    never pulls in torch and the GNN side never pulls in TensorFlow.

    Parameters
    ----------
    seed : int
        Non-negative seed.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)
    elif "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    if "tensorflow" in sys.modules:
        # Same seed, same numbers: without this, TensorFlow may pick non-deterministic kernels
        # (reductions, some GPU ops). Idempotent; costs little on a CPU.
        sys.modules["tensorflow"].config.experimental.enable_op_determinism()
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "torch_geometric" in sys.modules:
        sys.modules["torch_geometric"].seed_everything(seed)
    return seed
