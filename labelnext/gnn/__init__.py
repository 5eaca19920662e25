"""GraphSAGE sidecar: structure-aware uncertainty over the analyzer's exported embeddings.

``python -m gnn`` (after ``python AL_cycle.py``), ``gnn.run_gnn(...)`` on an export
folder, or ``gnn.score_pool(export, budget=...)`` on an export held in memory. Never
imports TensorFlow. The rooms, top to bottom: ``export`` (the schema; no torch),
``graph``, ``model``, ``scores``, ``run``, ``figures``, ``__main__`` (the CLI).
``gnn.export``'s names are imported here; the torch parts load on first use of a
name below (PEP 562), so the Keras side can write an export without importing torch.
"""
import importlib

from labelnext.gnn.export import check_export, load_export, write_export
from labelnext.gnn.options import SCORES, GNNOptions
from labelnext.utils.extras import require

_TORCH_API = {
    "build_graph": "labelnext.gnn.graph", "edge_homophily": "labelnext.gnn.graph", "node_homophily": "labelnext.gnn.graph",
    "to_adjacency": "labelnext.gnn.graph",
    "CachedSAGEConv": "labelnext.gnn.model", "SAGE": "labelnext.gnn.model", "build_model": "labelnext.gnn.model", "predict_proba": "labelnext.gnn.model",
    "split_labeled": "labelnext.gnn.model", "train": "labelnext.gnn.model",
    "disagreement_scores": "labelnext.gnn.scores", "entropy_uncertainty": "labelnext.gnn.scores",
    "hybrid_scores": "labelnext.gnn.scores", "mutual_information": "labelnext.gnn.scores", "pool_scores": "labelnext.gnn.scores",
    "run_gnn": "labelnext.gnn.run", "score_pool": "labelnext.gnn.run",
}
__all__ = ["GNNOptions", "SCORES", "check_export", "load_export", "write_export", *_TORCH_API]


# The rooms that import torch and torch_geometric (the 'gnn' extra); ``scores`` is NumPy only.
_NEEDS_TORCH = ("labelnext.gnn.graph", "labelnext.gnn.model", "labelnext.gnn.run")


def __getattr__(name):  # PEP 562: import torch only when a torch name is used
    if name in _TORCH_API:
        if _TORCH_API[name] in _NEEDS_TORCH:
            for package in ("torch", "torch_geometric"):
                require(package, "gnn", "the GNN (python -m gnn, strategy 'gnn')")
        return getattr(importlib.import_module(_TORCH_API[name]), name)
    raise AttributeError(f"module 'labelnext.gnn' has no attribute {name!r}")
