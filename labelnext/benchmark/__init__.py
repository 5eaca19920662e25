"""The label-efficiency benchmark: the loop's round with a simulated oracle, curves and verdicts.

``simulate`` runs every strategy and seed round after round (``python
Evaluation/Benchmark/benchmark.py``); ``curves`` keeps ``curves.csv``, resumes it and
writes the summary (area under the curve against random, its interval and verdict).
"""
