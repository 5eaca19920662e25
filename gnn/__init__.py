"""GraphSAGE sidecar: structure-aware uncertainty over the analyzer's exported embeddings.

``python -m gnn`` (after ``python AL_cycle.py``), ``gnn.run_gnn(...)`` on an export
folder, or ``gnn.score_pool(export, budget=...)`` on an export held in memory. Never
imports TensorFlow. The rooms, top to bottom: ``export`` (the schema; no torch),
``graph``, ``model``, ``scores``, ``run``, ``figures``, ``__main__`` (the CLI).
``gnn.export``'s names are imported here; the torch parts load on first use of a
name below (PEP 562), so the Keras side can write an export without importing torch.
"""
import importlib

from gnn.export import check_export, load_export, write_export
from gnn.options import SCORES, GNNOptions

_TORCH_API = {
    "build_graph": "gnn.graph", "edge_homophily": "gnn.graph", "node_homophily": "gnn.graph",
    "to_adjacency": "gnn.graph",
    "CachedSAGEConv": "gnn.model", "SAGE": "gnn.model", "build_model": "gnn.model", "predict_proba": "gnn.model",
    "split_labeled": "gnn.model", "train": "gnn.model",
    "disagreement_scores": "gnn.scores", "entropy_uncertainty": "gnn.scores",
    "hybrid_scores": "gnn.scores", "mutual_information": "gnn.scores", "pool_scores": "gnn.scores",
    "run_gnn": "gnn.run", "score_pool": "gnn.run",
}
__all__ = ["GNNOptions", "SCORES", "check_export", "load_export", "write_export", *_TORCH_API]


def __getattr__(name):  # PEP 562: import torch only when a torch name is used
    if name in _TORCH_API:
        return getattr(importlib.import_module(_TORCH_API[name]), name)
    raise AttributeError(f"module 'gnn' has no attribute {name!r}")
