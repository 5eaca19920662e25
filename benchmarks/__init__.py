"""Benchmarks: the label-efficiency engine (``label_efficiency``, ``curves``), selection at
scale (``scale``), subpools on imbalanced and large pools (``anchoral_imbalanced``,
``anchoral_speed``) and the one synthetic pool generator (``synthetic``).

The modules are importable (``from benchmarks.label_efficiency import run_pair``) and the
speed / imbalance ones also run as scripts (``python benchmarks/scale.py``).
"""
