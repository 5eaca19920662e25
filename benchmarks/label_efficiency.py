"""Label-efficiency benchmark: simulated labeling rounds, every strategy against random and modAL.

    python Evaluation/Benchmark/benchmark.py --dataset digits \\
        --strategies random,entropy,margin,least_confidence,intersection,uncertainty_clustering,gnn,modal_entropy \\
        --initial 50 --budget 25 --rounds 12 --seeds 5

For each seed and strategy: start from the same initial labeled set, then for every round
select ``--budget`` pool items with the strategy, reveal their labels (simulated oracle:
nothing else is ever revealed), retrain the base model and evaluate it on the held-out test
set. Outputs in ``--out`` (default ``results/benchmark/``): ``curves.csv`` (one row per
round, appended as it runs), ``learning_curves.png``, ``summary.json``, ``summary.txt`` and
``run.json`` (the arguments: a rerun with the same ones skips finished (strategy, seed)
pairs and redoes partial ones; different ones are refused). See ``benchmarks/curves.py``.

Training is controlled so that differences come from the selections, not from training
noise (measured on digits: with epoch-capped early stopping, entropy lost to random by 0.07
AUC; with these controls it won in every seed): within a seed every fit starts from the same
saved initial weights and optimizer state, is re-seeded, and runs a fixed number of
optimiser steps with no validation split or early stopping (:class:`train.Trainer` with ``exact_steps=True``).
Round 0 (the initial set) is trained once per seed and shared by every strategy.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

import checks
import strategies as st
from benchmarks.curves import append_curve, prepare_resume, read_curves, summary_table, write_outputs
from cli import progress, run_cli
from datasets import load_dataset
from train import SCHEDULES, Trainer, draw_labeled_set, metrics_from_probs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STRATEGIES = ("random", "entropy", "margin", "least_confidence", "intersection", "uncertainty_clustering",
                      "gnn", "modal_entropy")
MODELS = ("small_cnn", "mobilenetv3")
# Arguments that change the numbers: a curves.csv is only resumed with the same ones.
# Strategies and the number of seeds may change between runs (pairs are independent).
RUN_KEYS = ("dataset", "model", "image_size", "initial", "initial_mode", "budget", "rounds", "steps", "batch_size",
            "lr", "schedule", "fine_tune", "pool_size", "test_size", "dbal_beta", "gnn_epochs")
# Keys added after a run was made compare equal to their default.
KEY_DEFAULTS = {"schedule": "constant"}
# Inference batch of the benchmark's passes over pool and test set.
PREDICT_BATCH = 512


# --------------------------------------------------------------------------- oracle
class Oracle:
    """Simulated annotator: holds the true labels privately and reveals only what is queried.

    Every reveal is recorded in ``revealed_`` (mask) and ``log_`` (one array per query), so a
    test can check that nothing else was ever used.
    """

    def __init__(self, labels):
        self.__labels = np.asarray(labels, dtype=np.int64).copy()
        if (self.__labels < 0).any():
            raise ValueError("the oracle needs a known label for every pool item")
        self.revealed_ = np.zeros(len(self.__labels), dtype=bool)
        self.log_ = []

    def __len__(self):
        return len(self.__labels)

    def query(self, rows):
        """Reveal (and record) the labels of ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        self.revealed_[rows] = True
        self.log_.append(rows.copy())
        return self.__labels[rows].copy()

    def labels_of(self, rows):
        """Labels of rows revealed earlier; asking for an unrevealed row is a bug, not a query."""
        rows = np.asarray(rows, dtype=np.int64)
        if not self.revealed_[rows].all():
            raise RuntimeError("asked for labels that were never revealed")
        return self.__labels[rows].copy()

    def known_labels(self):
        """Labels of every row, -1 where not revealed (what strategies may see)."""
        return np.where(self.revealed_, self.__labels, -1)


# --------------------------------------------------------------------------- data
def load_data(dataset, image_size):
    """Training items with known labels, and a test split (carved from training when there is none)."""
    ds = load_dataset(dataset, image_size=image_size)
    known = ds.y_train >= 0
    x, y = ds.x_train[known], ds.y_train[known]
    if ds.x_test is not None and ds.y_test is not None and (ds.y_test >= 0).any():
        keep = ds.y_test >= 0
        return x, y, ds.x_test[keep], ds.y_test[keep], ds.n_classes
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    return x[tr], y[tr], x[te], y[te], ds.n_classes


def seed_split(n_pool, n_test, random_state, pool_size=None, test_size=None):
    """Rows of the pool and the test set for one seed (all rows when no size is given)."""
    rng = np.random.RandomState(random_state)
    pool = np.arange(n_pool) if not pool_size or pool_size >= n_pool else np.sort(rng.choice(n_pool, pool_size, replace=False))
    test = np.arange(n_test) if not test_size or test_size >= n_test else np.sort(rng.choice(n_test, test_size, replace=False))
    return pool, test


def initial_rows(y, size, random_state, mode="stratified"):
    """The initial labeled rows for a seed: the same for every strategy."""
    return draw_labeled_set(y, size, random_state=random_state, stratified=(mode == "stratified"))


def _test_metrics(trainer, x_test, y_test):
    m = metrics_from_probs(trainer.predict(x_test, batch_size=PREDICT_BATCH)[0], y_test)
    return m["accuracy"], m["macro_f1"]


# --------------------------------------------------------------------------- simulation
def train_round0(trainer, seed, x_pool, y_initial, initial, x_test, y_test):
    """Fit on the initial set once per seed; every strategy starts from this."""
    seconds = trainer.fit(x_pool[initial], y_initial, seed).info_["train_seconds"]
    probs, emb = trainer.predict(x_pool, batch_size=PREDICT_BATCH)
    acc, f1 = _test_metrics(trainer, x_test, y_test)
    return {"probs": probs, "embeddings": emb, "head": trainer.head(), "accuracy": acc, "macro_f1": f1,
            "train_seconds": seconds, "weights": trainer.get_weights()}


def run_pair(strategy, seed, *, x_pool, oracle, initial, x_test, y_test, trainer, round0, budget, rounds,
             fine_tune=False, params=None, on_round=None):
    """Simulate ``rounds`` labeling rounds of one strategy; returns the CSV rows.

    The oracle reveals the initial rows and then only what the strategy selects; training
    reads labels through ``oracle.labels_of`` (revealed rows only) and strategies see
    ``oracle.known_labels()`` (-1 for the pool). ``trainer`` has the :class:`train.Trainer`
    methods ``fit(x, y, random_state, start_weights=)`` (returning itself, with
    ``info_['train_seconds']``), ``predict``, ``head`` and ``get_weights``.
    """
    mask = np.zeros(len(oracle), dtype=bool)
    oracle.query(initial)
    mask[initial] = True
    row = {"strategy": strategy, "seed": seed, "round": 0, "n_labeled": int(mask.sum()),
           "accuracy": round0["accuracy"], "macro_f1": round0["macro_f1"], "select_seconds": 0.0,
           "train_seconds": round0["train_seconds"]}
    rows = [row]
    if on_round:
        on_round(row)
    probs, emb, head, weights = round0["probs"], round0["embeddings"], round0["head"], round0["weights"]
    for r in range(1, rounds + 1):
        ctx = st.SelectionContext(probs, emb, mask, labels=oracle.known_labels(), head=head, params=params or {})
        start = time.perf_counter()
        picked = st.select(strategy, ctx, budget, random_state=np.random.RandomState(seed * 10_000 + r))
        select_seconds = time.perf_counter() - start
        oracle.query(picked)
        mask[picked] = True
        labeled = np.flatnonzero(mask)
        train_seconds = trainer.fit(x_pool[labeled], oracle.labels_of(labeled), seed,
                                    start_weights=weights if fine_tune else None).info_["train_seconds"]
        probs, emb = trainer.predict(x_pool, batch_size=PREDICT_BATCH)
        head = trainer.head()
        if fine_tune:
            weights = trainer.get_weights()
        acc, f1 = _test_metrics(trainer, x_test, y_test)
        row = {"strategy": strategy, "seed": seed, "round": r, "n_labeled": int(mask.sum()), "accuracy": acc,
               "macro_f1": f1, "select_seconds": select_seconds, "train_seconds": train_seconds}
        rows.append(row)
        if on_round:
            on_round(row)
    return rows


# --------------------------------------------------------------------------- CLI
def build_parser():
    p = argparse.ArgumentParser(
        description="Label-efficiency benchmark: simulated labeling rounds (labels revealed only for "
        "selected items), retraining the base model each round from the same initial weights, "
        "every strategy against random and modAL's peers, over seeds. Writes curves.csv, "
        "learning_curves.png, summary.json and summary.txt to --out; reruns resume.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dataset", default="digits", help="'digits', 'cifar10', or a path: CIFAR-10 pickle folder, "
                   "image-folder tree ROOT/{train,test}/<class>/, .npz (x_train, y_train, x_test, y_test) or a .tar.gz of a tree")
    p.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                   help=f"comma-separated: {', '.join(st.available_strategies())}, or <subpool>_<strategy> "
                   f"with subpool in {', '.join(st.SUBPOOLS)} (e.g. anchoral_entropy)")
    p.add_argument("--initial", type=int, default=50, help="size of the initial labeled set (same for every strategy within a seed)")
    p.add_argument("--initial-mode", default="stratified", choices=("stratified", "random"), help="how the initial set is drawn")
    p.add_argument("--budget", type=int, default=25, help="labels revealed per round")
    p.add_argument("--rounds", type=int, default=12, help="selection rounds after the initial fit")
    p.add_argument("--seeds", type=int, default=5, help="run seeds 0 .. N-1 (initial set, weights, subsamples)")
    p.add_argument("--model", default="small_cnn", choices=MODELS,
                   help="base model: small_cnn (a ~60k-parameter 3-block CNN, fast) or mobilenetv3 (the project's MobileNetV3Small)")
    p.add_argument("--image-size", type=int, default=None,
                   help="model input side; default 8 for digits with small_cnn (their native 8x8), else 32")
    p.add_argument("--steps", type=int, default=200, help="optimiser steps per fit (epochs = steps / batches per epoch)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES,
                   help="learning rate over a fit's steps: constant, or cosine decay to 0 (steadier last iterate)")
    p.add_argument("--fine-tune", action="store_true",
                   help="continue each round from the previous round's weights instead of the seed's initial weights")
    p.add_argument("--pool-size", type=int, default=None, help="subsample the training pool to this many items (per seed)")
    p.add_argument("--test-size", type=int, default=None, help="subsample the test set to this many items (per seed)")
    p.add_argument("--dbal-beta", type=int, default=10, help="dbal / uncertainty_clustering: cluster the beta x budget "
                   "most uncertain items")
    p.add_argument("--gnn-epochs", type=int, default=200, help="gnn: GraphSAGE epoch cap per round")
    p.add_argument("--out", default=str(REPO / "results" / "benchmark"), help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _check_args(args):
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not names:
        raise ValueError("strategies is empty: pass e.g. --strategies random,entropy")
    for name in names:
        st.get_strategy(name)
    if len(set(names)) != len(names):
        raise ValueError(f"strategies lists a name twice: {args.strategies!r}")
    checks.check_int(args.initial, "initial", low=2)
    checks.check_int(args.budget, "budget", low=1)
    checks.check_int(args.rounds, "rounds", low=1)
    checks.check_int(args.seeds, "seeds", low=1)
    checks.check_int(args.steps, "steps", low=1)
    checks.check_int(args.batch_size, "batch_size", low=1)
    if args.pool_size is not None:
        checks.check_int(args.pool_size, "pool_size", low=2)
    if args.test_size is not None:
        checks.check_int(args.test_size, "test_size", low=1)
    if args.dbal_beta < 1:
        raise ValueError(f"--dbal-beta must be an integer >= 1, got {args.dbal_beta}")
    if not args.lr > 0:
        raise ValueError(f"lr must be > 0, got {args.lr}")
    checks.check_int(args.gnn_epochs, "gnn_epochs", low=1)
    return names


def main(argv=None):
    """Run (or resume) the benchmark described by the command line ``argv``; prints the summary table."""
    args = build_parser().parse_args(argv)
    names = _check_args(args)
    if args.image_size is None:
        args.image_size = 8 if args.dataset == "digits" and args.model == "small_cnn" else 32
    if args.model == "mobilenetv3" and args.image_size < 32:
        raise ValueError(f"image_size must be >= 32 for mobilenetv3, got {args.image_size}")
    say = lambda msg: progress(msg, not args.quiet)  # noqa: E731
    wall = time.perf_counter()
    x_all, y_all, xt_all, yt_all, n_classes = load_data(args.dataset, args.image_size)
    n_pool = min(len(y_all), args.pool_size or len(y_all))
    need = args.initial + args.rounds * args.budget
    if need > n_pool:
        raise ValueError(f"budget: initial ({args.initial}) + rounds ({args.rounds}) x budget ({args.budget}) = {need} "
                         f"labels, more than the pool of {n_pool} items")
    run_args = {k: getattr(args, k) for k in RUN_KEYS}
    out = Path(args.out)
    done = prepare_resume(out, run_args, KEY_DEFAULTS)
    curves_path = out / "curves.csv"
    seeds = list(range(args.seeds))
    params = {"uncertainty_clustering": {"beta": args.dbal_beta}, "dbal": {"beta": args.dbal_beta},
              "gnn": {"epochs": args.gnn_epochs}}
    trainer = Trainer(x_all.shape[1:], n_classes, arch=args.model, steps=args.steps, batch_size=args.batch_size,
                      lr=args.lr, schedule=args.schedule, exact_steps=True)
    total = len(seeds) * len(names)
    say(f"benchmark: {args.dataset} ({len(y_all)} train, {len(yt_all)} test, {n_classes} classes, "
        f"{args.image_size}px), model {args.model}, {len(names)} strategies x {len(seeds)} seeds x "
        f"{args.rounds} rounds; {len([p for p in done if p[0] in names and p[1] in seeds])} of {total} pairs already done")
    k = 0
    for seed in seeds:
        todo = [n for n in names if (n, seed) not in done]
        k += len(names) - len(todo)
        if not todo:
            continue
        pool, test = seed_split(len(y_all), len(yt_all), seed, args.pool_size, args.test_size)
        x_pool, y_pool, x_test, y_test = x_all[pool], y_all[pool], xt_all[test], yt_all[test]
        initial = initial_rows(y_pool, args.initial, seed, args.initial_mode)
        # The seed's initial weights are saved once and reloaded on resume.
        trainer.start(seed, weights_file=out / "weights" / f"initial_weights_seed{seed}.npz", clear_session=True)
        # The initial labels are revealed by an oracle of their own: round 0 is shared by all strategies.
        round0 = train_round0(trainer, seed, x_pool, Oracle(y_pool).query(initial), initial, x_test, y_test)
        say(f"seed {seed}: round 0 on {len(initial)} labels: accuracy {round0['accuracy']:.4f} "
            f"({round0['train_seconds']:.1f} s)")
        for name in todo:
            k += 1

            def on_round(row, name=name, k=k):
                append_curve(curves_path, row)
                say(f"[{k}/{total}] {name} seed {seed} round {row['round']}/{args.rounds}: {row['n_labeled']} labels, "
                    f"accuracy {row['accuracy']:.4f}, macro-F1 {row['macro_f1']:.4f} "
                    f"(select {row['select_seconds']:.1f} s, train {row['train_seconds']:.1f} s)")

            run_pair(name, seed, x_pool=x_pool, oracle=Oracle(y_pool), initial=initial, x_test=x_test, y_test=y_test,
                     trainer=trainer, round0=round0, budget=args.budget, rounds=args.rounds,
                     fine_tune=args.fine_tune, params=params, on_round=on_round)
    seconds = time.perf_counter() - wall
    rows = read_curves(curves_path)
    # Strategies finished by earlier invocations into the same folder are reported too
    # (e.g. a later --strategies modal_ranked_batch is compared against the earlier random).
    order = list(dict.fromkeys([r["strategy"] for r in rows] + names))  # first appearance in curves.csv
    summary = write_outputs(out, rows, order, seeds, run_args, seconds)
    print(f"benchmark: {len(summary)} strategies x {len(seeds)} seeds in {seconds:.0f} s -> {out}/")
    print(summary_table(summary))


if __name__ == "__main__":  # python -m benchmarks.label_efficiency (from the repository root)
    sys.exit(run_cli(main))
