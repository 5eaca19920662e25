"""The GraphSAGE sidecar (``gnn/``) as a strategy: structure-aware uncertainty on a kNN graph.

``import gnn`` here loads the export schema only; torch is imported by ``gnn`` on the
first use of a torch name (``gnn.run_gnn``), so importing ``strategies`` stays torch-free.
"""
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

import checks
import gnn
from strategies.base import Options, check_float, int_seed

# gnn.SCORES, kept here so that checking the options needs no torch import (a test keeps them equal).
GNN_SCORES = ("hybrid", "margin", "entropy", "disagreement", "mc_dropout")


@dataclass(frozen=True)
class GnnOptions(Options):
    """Options of ``gnn``: the keyword arguments of ``gnn.run_gnn`` (same names, same defaults).

    Cross-option rules (``score='mc_dropout'`` needs ``mc_passes >= 2``; MC passes need
    ``dropout > 0``) and ``device`` are checked by ``gnn.run_gnn`` before it trains.
    """

    score: str = "hybrid"
    k: int = 10
    hidden: int = 64
    epochs: int = 200
    patience: int = 20
    dropout: float = 0.5
    lr: float = 0.01
    alpha: float = 0.5
    mc_passes: int = 0
    val_fraction: float = 0.2
    weight_decay: float = 5e-4
    device: Optional[str] = None

    def __post_init__(self):
        checks.check_choice(self.score, "score", GNN_SCORES)
        for name in ("k", "hidden", "epochs", "patience"):
            checks.check_int(getattr(self, name), name, low=1)
        checks.check_int(self.mc_passes, "mc_passes", low=0)
        check_float(self.dropout, "dropout", 0.0, 1.0, high_open=True)
        check_float(self.lr, "lr", 0.0, None, low_open=True)
        check_float(self.alpha, "alpha", 0.0, 1.0)
        check_float(self.val_fraction, "val_fraction", 0.0, 1.0, high_open=True)
        check_float(self.weight_decay, "weight_decay", 0.0, None)
        if self.device is not None and not isinstance(self.device, str):
            raise ValueError(f"device must be None, 'cpu' or 'cuda[:i]', got {self.device!r}")


def gnn_strategy(ctx, budget, random_state=None):
    """The GraphSAGE sidecar's ranking (``score='hybrid'`` by default) over a temporary export.

    The export carries labels for labeled rows only (-1 elsewhere), so the GNN never
    sees a pool label. Options: :class:`GnnOptions` (``params['gnn']``).
    """
    opts = ctx.options("gnn", GnnOptions)
    n = ctx.probs.shape[0]
    export = gnn.check_export(np.asarray(ctx.embeddings, dtype=np.float32), ctx.probs,
                              np.where(ctx.labeled_mask, ctx.labels, -1).astype(np.int64), ctx.labeled_mask,
                              np.arange(n, dtype=np.int64),
                              {"dataset": "benchmark", "n_classes": ctx.n_classes,
                               "class_names": [str(c) for c in range(ctx.n_classes)]})
    # gnn.run_gnn reads an export folder; written to a temporary one until gnn ranks in memory.
    with tempfile.TemporaryDirectory(prefix="al-gnn-") as tmp:
        folder = gnn.write_export(Path(tmp) / "embeddings", **export)
        res = gnn.run_gnn(folder, Path(tmp) / "out", budget=budget, seed=int_seed(random_state), plots=False,
                          progress=False, **opts.as_dict())
    return np.asarray(res["indices"], dtype=np.int64)
