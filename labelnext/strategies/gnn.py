"""The GraphSAGE sidecar (``gnn/``) as a strategy: structure-aware uncertainty on a kNN graph.

``import gnn`` loads the export schema and the options only; torch is imported by ``gnn``
on the first use of a torch name (``gnn.score_pool``), so importing ``strategies`` stays
torch-free. Options: :class:`gnn.GNNOptions` (``params['gnn']``).
"""
import numpy as np

from labelnext import gnn
from labelnext.strategies.base import int_seed


def gnn_strategy(ctx, budget, random_state=None):
    """The GraphSAGE sidecar's ranking (``score='hybrid'`` by default), in memory.

    The export carries labels for labeled rows only (-1 elsewhere), so the GNN never
    sees a pool label.
    """
    opts = ctx.options("gnn", gnn.GNNOptions)
    export = gnn.check_export(np.asarray(ctx.embeddings, dtype=np.float32), ctx.probs,
                              np.where(ctx.labeled_mask, ctx.labels, -1).astype(np.int64), ctx.labeled_mask,
                              metadata={"dataset": "benchmark"})
    res = gnn.score_pool(export, budget=budget, random_state=int_seed(random_state),
                         **dict(opts.as_dict(), progress=False))
    return np.asarray(res["selected_rows"], dtype=np.int64)
