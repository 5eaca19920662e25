"""GraphSAGE sidecar: structure-aware uncertainty over the analyzer's exported embeddings.

``python -m gnn`` (after ``python AL_cycle.py``) or ``gnn.run_gnn(...)`` in-process.
Reads ``results/embeddings/*.npy`` and never imports TensorFlow. ``gnn.export`` (the
schema) imports neither torch nor TensorFlow; the torch parts load on first use of a
name below, so the Keras side can write an export without importing torch.
"""
import importlib

_TORCH_API = (
    "SAGE", "SCORES", "build_graph", "build_model", "disagreement_scores", "edge_homophily",
    "entropy_uncertainty", "hybrid_scores", "mutual_information", "node_homophily", "pool_scores",
    "predict_proba", "run_gnn", "split_labeled", "to_adjacency", "train",
)
__all__ = ["check_export", "load_export", "write_export", *_TORCH_API]

from gnn.export import check_export, load_export, write_export  # noqa: E402


def __getattr__(name):  # PEP 562: import torch only when a torch name is used
    if name in _TORCH_API:
        return getattr(importlib.import_module("gnn.sage"), name)
    raise AttributeError(f"module 'gnn' has no attribute {name!r}")
