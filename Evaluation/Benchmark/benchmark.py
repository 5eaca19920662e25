"""Label-efficiency benchmark: simulated labeling rounds, every strategy against random and modAL.

    python Evaluation/Benchmark/benchmark.py --dataset digits \\
        --strategies random,entropy,margin,least_confidence,intersection,uncertainty_clustering,gnn,modal_entropy \\
        --initial 50 --budget 25 --rounds 12 --seeds 5

    python Evaluation/Benchmark/benchmark.py --dataset ../shared/data/letter-recognition.csv \
        --strategies random,margin,badge,typiclust,auto --initial 52 --budget-ratio 0.005 --rounds 8 --seeds 3

A thin script over ``labelnext/benchmark/simulate.py`` (the engine: oracle, rounds,
controlled training with cosine decay and a step budget that grows with the labeled set;
images, tables and text) and ``labelnext/benchmark/curves.py`` (curves.csv, resume, the summary with
the AULC difference to random, its bootstrap interval and verdict, noise and stopping
criteria). Measured tables: docs/BENCHMARKS.md.
Outputs in ``--out`` (default ``results/benchmark/``); ``--help`` lists every flag.
"""
import sys

from labelnext.benchmark.simulate import main
from labelnext.utils.console import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
