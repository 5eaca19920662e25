"""AnchorAL on an imbalanced pool: CIFAR-10 with one class cut to 1% of the pool.

    python -m benchmarks.anchoral_imbalanced --json results/anchoral_imbalanced.json

Each strategy runs the loop's round (``labelnext.loop.round.run_round``, the code of ``al round``)
with the small CNN: train with the one recipe (same initial weights, re-seeded, ``--steps`` per fit),
one inference pass over pool and test set, select ``--budget`` items, label them,
repeat for ``--rounds`` rounds. Reported per round and strategy: minority items
selected and labeled so far, minority-class recall and F1 and macro-F1 on the
(balanced) CIFAR-10 test set, and the selection's seconds (subpool + base strategy;
not training or inference).

Strategies (names of the ``strategies`` registry, run through ``strategies.select``):
``anchoral_entropy`` (AnchorAL subpool, entropy inside it), ``seals_entropy`` (SEALS
subpool), ``randsub_entropy`` (random subpool of the same size), ``entropy`` (full pool)
and ``random``.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import numpy as np
from sklearn.metrics import f1_score, recall_score

from labelnext.utils import checks
from labelnext.data import load_dataset
from labelnext.loop.round import STEPS, RoundTrainer, fit_round, run_round

STRATEGIES = ("anchoral_entropy", "seals_entropy", "randsub_entropy", "entropy", "random")
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


def imbalanced_pool(y, minority, fraction, rng):
    """Training rows kept: every majority item and ``fraction`` of the pool as minority items."""
    major = np.flatnonzero(y != minority)
    n_min = max(1, int(round(fraction * len(major) / (1 - fraction))))
    minor = rng.choice(np.flatnonzero(y == minority), n_min, replace=False)
    return np.sort(np.concatenate([major, minor]))


def initial_labeled(y, n, n_classes, rng, per_class=2):
    """``n`` random rows with at least ``per_class`` of every class (the usual seed-set assumption)."""
    rows = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(n_classes)]
    rows = np.concatenate(rows)
    rest = np.setdiff1d(np.arange(len(y)), rows)
    return np.concatenate([rows, rng.choice(rest, n - len(rows), replace=False)])


def subpool_params(args):
    """The registry's options for the subpools, from the command line."""
    return {"anchoral": {"num_anchors": args.num_anchors, "k_neighbors": args.k_neighbors,
                         "subpool_size": args.subpool_size},
            "seals": {"k_neighbors": args.seals_k_neighbors},
            "randsub": {"subpool_size": args.subpool_size}}


def evaluate(probs_test, y_test, minority):
    pred = probs_test.argmax(axis=1)
    return {
        "accuracy": round(float((pred == y_test).mean()), 4),
        "macro_f1": round(float(f1_score(y_test, pred, average="macro")), 4),
        "minority_recall": round(float(recall_score(y_test == minority, pred == minority, zero_division=0)), 4),
        "minority_f1": round(float(f1_score(y_test == minority, pred == minority, zero_division=0)), 4),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR-10 (datasets.load_dataset name or path)")
    p.add_argument("--cache-dir", default=os.environ.get("AL_CACHE_DIR", "/tmp/al-cache"), help="where the archive is extracted")
    p.add_argument("--minority", type=int, default=3, help="class cut to --minority-fraction of the pool (3 = cat)")
    p.add_argument("--minority-fraction", type=float, default=0.01)
    p.add_argument("--initial", type=int, default=200, help="initial labeled items (>= 2 per class)")
    p.add_argument("--budget", type=int, default=100, help="items labeled per round")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=STEPS, help="optimiser steps per fit at least (the loop's recipe, labelnext.loop.round)")
    p.add_argument("--num-anchors", type=int, default=10)
    p.add_argument("--k-neighbors", type=int, default=50)
    p.add_argument("--subpool-size", type=int, default=1000)
    p.add_argument("--seals-k-neighbors", type=int, default=10)
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)
    strategies = args.strategies.split(",")
    for s in strategies:
        checks.check_choice(s, "strategy", STRATEGIES)

    t0 = time.perf_counter()
    data = load_dataset(args.data, cache_dir=args.cache_dir)
    rng = np.random.RandomState(args.seed)
    keep = imbalanced_pool(data.y_train, args.minority, args.minority_fraction, rng)
    x, y = data.x_train[keep], data.y_train[keep]
    n_classes = data.n_classes
    start = initial_labeled(y, args.initial, n_classes, rng)
    print(f"pool: {len(y)} items, minority class {args.minority} ({data.class_names[args.minority]}): "
          f"{int((y == args.minority).sum())} items ({100 * (y == args.minority).mean():.2f}%); "
          f"{args.initial} labeled to start; data loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    trainer = RoundTrainer(x.shape[1:], n_classes, arch="small_cnn", steps=args.steps).start(args.seed)
    initial = np.full(len(y), -1, dtype=np.int64)
    initial[start] = y[start]

    params = subpool_params(args)
    results = {"config": vars(args), "pool": int(len(y)), "minority_in_pool": int((y == args.minority).sum()),
               "class_name": data.class_names[args.minority], "strategies": {}}
    round0 = fit_round(trainer, x, initial, seed=args.seed, x_test=data.x_test, y_test=data.y_test)
    for strategy in strategies:
        labels, fit = initial.copy(), round0
        history = []
        for r in range(args.rounds + 1):
            res = run_round(trainer, x, labels, strategy=strategy, budget=args.budget if r < args.rounds else None,
                            seed=args.seed, number=r, x_test=data.x_test, y_test=data.y_test, params=params,
                            fit=fit if r == 0 else None)
            fit, labeled = res.fit, np.flatnonzero(labels >= 0)
            row = {"round": r, "labeled": int(len(labeled)), "minority_labeled": int((y[labeled] == args.minority).sum())}
            row.update(evaluate(fit.test_probs, data.y_test, args.minority))
            if res.selection is not None:
                picked = res.selection.rows
                row["selection_seconds"] = round(res.selection.seconds, 3)
                row["minority_selected"] = int((y[picked] == args.minority).sum())
                labels[picked] = y[picked]  # the oracle
            history.append(row)
            print(f"{strategy:>18} round {r}: " + ", ".join(f"{k}={v}" for k, v in row.items() if k != "round"), flush=True)
        results["strategies"][strategy] = history
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print_table(results)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def print_table(results):
    print(f"\nMinority class {results['class_name']!r}: {results['minority_in_pool']} of {results['pool']} pool items")
    print(f"{'strategy':>18} {'minority found per round':>28} {'total':>6} {'recall':>7} {'F1':>6} {'macroF1':>8} {'select s/round':>15}")
    for name, hist in results["strategies"].items():
        found = [h["minority_selected"] for h in hist if "minority_selected" in h]
        secs = [h["selection_seconds"] for h in hist if "selection_seconds" in h]
        last = hist[-1]
        print(f"{name:>18} {' '.join(map(str, found)):>28} {sum(found):>6} {last['minority_recall']:>7.3f} "
              f"{last['minority_f1']:>6.3f} {last['macro_f1']:>8.3f} {np.mean(secs):>15.3f}")


if __name__ == "__main__":
    sys.exit(main())
