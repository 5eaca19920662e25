"""GraphSAGE sidecar: structure-aware uncertainty over the analyzer's exported embeddings.

``python -m gnn`` (after ``python AL_cycle.py``) or ``gnn.run_gnn(...)`` in-process.
Reads ``results/embeddings/*.npy`` and never imports TensorFlow.
"""
from gnn.sage import (
    SAGE,
    SCORES,
    build_graph,
    build_model,
    check_export,
    disagreement_scores,
    edge_homophily,
    entropy_uncertainty,
    hybrid_scores,
    load_export,
    mutual_information,
    node_homophily,
    pool_scores,
    predict_proba,
    run_gnn,
    split_labeled,
    to_adjacency,
    train,
)

__all__ = [
    "SAGE", "SCORES", "build_graph", "build_model", "check_export", "disagreement_scores",
    "edge_homophily", "entropy_uncertainty", "hybrid_scores", "load_export", "mutual_information",
    "node_homophily", "pool_scores", "predict_proba", "run_gnn", "split_labeled", "to_adjacency", "train",
]
