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
pairs and redoes partial ones; different ones are refused).

Training is controlled so that differences come from the selections, not from training
noise (DESIGN.md): within a seed every fit starts from the same saved initial weights and
optimizer state, is re-seeded, and runs a fixed number of optimiser steps with no
validation split or early stopping. Round 0 (the initial set) is trained once per seed and
shared by every strategy.
"""
import argparse
import csv
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import checks  # noqa: E402
import strategies as st  # noqa: E402
from cli import progress, run_cli  # noqa: E402
from results_io import atomic_path, load_json, save_figure, save_json, save_text  # noqa: E402

COLUMNS = ("strategy", "seed", "round", "n_labeled", "accuracy", "macro_f1", "select_seconds", "train_seconds")
DEFAULT_STRATEGIES = ("random", "entropy", "margin", "least_confidence", "intersection", "uncertainty_clustering",
                      "gnn", "modal_entropy")
MODELS = ("small_cnn", "mobilenetv3")
SCHEDULES = ("constant", "cosine")
# Arguments that change the numbers: a curves.csv is only resumed with the same ones.
# Strategies and the number of seeds may change between runs (pairs are independent).
RUN_KEYS = ("dataset", "model", "image_size", "initial", "initial_mode", "budget", "rounds", "steps", "batch_size",
            "lr", "schedule", "fine_tune", "pool_size", "test_size", "alpha", "gnn_epochs")
# Keys added after a run was made compare equal to their default.
KEY_DEFAULTS = {"schedule": "constant"}


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


# --------------------------------------------------------------------------- training
class KerasTrainer:
    """One compiled Keras model per seed, reset to its saved initial state before every fit.

    Building and compiling once per seed (instead of once per fit, as ``train.train_classifier``
    does) avoids re-tracing the graph for each of the hundreds of fits; ``steps`` batches are
    drawn from a repeating, seeded shuffle in one epoch, so small labeled sets get the same
    number of optimiser steps as large ones without per-epoch overhead.
    """

    def __init__(self, input_shape, n_classes, *, arch="small_cnn", steps=200, batch_size=32, lr=1e-3,
                 schedule="constant", weights_dir=None):
        self.input_shape, self.n_classes, self.arch = tuple(input_shape), int(n_classes), arch
        self.steps, self.batch_size, self.lr = int(steps), int(batch_size), float(lr)
        self.schedule = checks.check_choice(schedule, "schedule", SCHEDULES)
        self.weights_dir = Path(weights_dir) if weights_dir is not None else None
        self.model = None

    def start_seed(self, seed):
        """Build the seed's model; its initial weights are saved once and reloaded on resume."""
        import train
        from seeding import seed_everything

        keras = train._keras()
        keras.backend.clear_session()
        seed_everything(seed)
        model = train.build_model(self.input_shape, self.n_classes, arch=self.arch)
        lr = self.lr
        if self.schedule == "cosine":
            # Decays to 0 over the fit's fixed steps (the iteration counter is reset per fit):
            # the last iterate, the one evaluated, is then far less noisy than at a constant rate.
            lr = keras.optimizers.schedules.CosineDecay(self.lr, self.steps)
        train.compile_model(model, lr)
        model.optimizer.build(model.trainable_variables)
        if self.weights_dir is not None:
            path = self.weights_dir / f"initial_weights_seed{seed}.npz"
            if path.exists():
                with np.load(path) as f:
                    model.set_weights([f[f"w{i}"] for i in range(len(f.files))])
            else:
                with atomic_path(path, ".npz") as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        self.model = model
        self._weights0 = model.get_weights()
        self._optimizer0 = [v.numpy() for v in model.optimizer.variables]
        # Dropout's seed-generator state is not among the weights and advances with every
        # step: without a reset, a fit's dropout masks would depend on how many fits ran
        # before it in this process (strategy order, resumes).
        self._seed_states = [(g.state, g.state.numpy()) for g in self._seed_generators(model)]
        self._both = keras.Model(model.inputs, [model.output, model.get_layer("embedding").output])

    @staticmethod
    def _seed_generators(model):
        found = []
        for layer in model._flatten_layers(include_self=False, recursive=True):
            gen = getattr(layer, "seed_generator", None)
            if gen is not None and getattr(gen, "state", None) is not None:
                found.append(gen)
        return found

    def fit(self, x, y, seed, start_weights=None):
        """Train ``steps`` steps from the initial weights (or ``start_weights``); returns seconds."""
        import tensorflow as tf

        from seeding import seed_everything

        seed_everything(seed)
        self.model.set_weights(self._weights0 if start_weights is None else start_weights)
        for var, value in zip(self.model.optimizer.variables, self._optimizer0):
            var.assign(value)
        for var, value in self._seed_states:
            var.assign(value)
        data = (tf.data.Dataset.from_tensor_slices((np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)))
                .shuffle(len(y), seed=seed, reshuffle_each_iteration=True).repeat().batch(self.batch_size))
        start = time.perf_counter()
        self.model.fit(data, steps_per_epoch=self.steps, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - start

    def predict(self, x):
        """Class probabilities and embeddings, ndarray (n, c) and (n, d), float32."""
        probs, emb = self._both.predict(np.asarray(x, dtype=np.float32), batch_size=512, verbose=0)
        probs = probs.astype(np.float32)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs, emb.astype(np.float32)

    def head(self):
        """The softmax layer over the embedding: (weights (d, c), bias (c,))."""
        w, b = self.model.get_layer("predictions").get_weights()
        return w, b

    def get_weights(self):
        return self.model.get_weights()


# --------------------------------------------------------------------------- data
def load_data(dataset, image_size):
    """Training items with known labels, and a test split (carved from training when there is none)."""
    from datasets import load_dataset

    ds = load_dataset(dataset, image_size=image_size)
    known = ds.y_train >= 0
    x, y = ds.x_train[known], ds.y_train[known]
    if ds.x_test is not None and ds.y_test is not None and (ds.y_test >= 0).any():
        keep = ds.y_test >= 0
        return x, y, ds.x_test[keep], ds.y_test[keep], ds.n_classes
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    return x[tr], y[tr], x[te], y[te], ds.n_classes


def seed_split(n_pool, n_test, seed, pool_size=None, test_size=None):
    """Rows of the pool and the test set for one seed (all rows when no size is given)."""
    rng = np.random.RandomState(seed)
    pool = np.arange(n_pool) if not pool_size or pool_size >= n_pool else np.sort(rng.choice(n_pool, pool_size, replace=False))
    test = np.arange(n_test) if not test_size or test_size >= n_test else np.sort(rng.choice(n_test, test_size, replace=False))
    return pool, test


def initial_rows(y, size, seed, mode="stratified"):
    """The initial labeled rows for a seed: the same for every strategy."""
    from train import draw_labeled_set

    return draw_labeled_set(y, size, seed=seed, stratified=(mode == "stratified"))


def test_metrics(probs, y):
    from sklearn.metrics import f1_score

    pred = probs.argmax(axis=1)
    return float((pred == y).mean()), float(f1_score(y, pred, average="macro"))


# --------------------------------------------------------------------------- simulation
def train_round0(trainer, seed, x_pool, y_initial, initial, x_test, y_test):
    """Fit on the initial set once per seed; every strategy starts from this."""
    seconds = trainer.fit(x_pool[initial], y_initial, seed)
    probs, emb = trainer.predict(x_pool)
    test_probs, _ = trainer.predict(x_test)
    acc, f1 = test_metrics(test_probs, y_test)
    return {"probs": probs, "embeddings": emb, "head": trainer.head(), "accuracy": acc, "macro_f1": f1,
            "train_seconds": seconds, "weights": trainer.get_weights()}


def run_pair(strategy, seed, *, x_pool, oracle, initial, x_test, y_test, trainer, round0, budget, rounds,
             fine_tune=False, params=None, on_round=None):
    """Simulate ``rounds`` labeling rounds of one strategy; returns the CSV rows.

    The oracle reveals the initial rows and then only what the strategy selects; training
    reads labels through ``oracle.labels_of`` (revealed rows only) and strategies see
    ``oracle.known_labels()`` (-1 for the pool).
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
                                    start_weights=weights if fine_tune else None)
        probs, emb = trainer.predict(x_pool)
        head = trainer.head()
        if fine_tune:
            weights = trainer.get_weights()
        acc, f1 = test_metrics(trainer.predict(x_test)[0], y_test)
        row = {"strategy": strategy, "seed": seed, "round": r, "n_labeled": int(mask.sum()), "accuracy": acc,
               "macro_f1": f1, "select_seconds": select_seconds, "train_seconds": train_seconds}
        rows.append(row)
        if on_round:
            on_round(row)
    return rows


# --------------------------------------------------------------------------- curves.csv
def _typed(row):
    out = dict(row)
    for key in ("seed", "round", "n_labeled"):
        out[key] = int(out[key])
    for key in ("accuracy", "macro_f1", "select_seconds", "train_seconds"):
        out[key] = float(out[key])
    return out


def read_curves(path):
    if not Path(path).exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [_typed(r) for r in csv.DictReader(f)]


def _format(row):
    return {k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in COLUMNS}


def write_curves(path, rows):
    """Rewrite the whole file atomically (used when partial pairs are dropped)."""
    with atomic_path(path, ".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            for row in rows:
                w.writerow(_format(row))


def append_curve(path, row):
    new = not Path(path).exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow(_format(row))
        f.flush()
        os.fsync(f.fileno())


def finished_pairs(rows, rounds):
    """(strategy, seed) pairs with every round 0..rounds present."""
    seen = {}
    for r in rows:
        seen.setdefault((r["strategy"], r["seed"]), set()).add(r["round"])
    return {pair for pair, got in seen.items() if got >= set(range(rounds + 1))}


def prepare_resume(out, run_args):
    """Check ``run.json`` against these arguments, drop partial pairs; returns finished pairs."""
    curves, meta = out / "curves.csv", out / "run.json"
    if curves.exists():
        if not meta.exists():
            raise ValueError(f"{curves} exists without run.json: pass another --out or remove it")
        old = load_json(meta)
        diff = [f"{k}: {old.get(k, KEY_DEFAULTS.get(k))!r} then, {run_args[k]!r} now" for k in RUN_KEYS
                if old.get(k, KEY_DEFAULTS.get(k)) != run_args[k]]
        if diff:
            raise ValueError(f"{curves} was made with different arguments ({'; '.join(diff)}): "
                             f"pass another --out, or the same arguments to resume")
    out.mkdir(parents=True, exist_ok=True)
    save_json(meta, run_args)
    rows = read_curves(curves)
    done = finished_pairs(rows, run_args["rounds"])
    kept = [r for r in rows if (r["strategy"], r["seed"]) in done and r["round"] <= run_args["rounds"]]
    if len(kept) != len(rows):
        write_curves(curves, kept)
    return done


# --------------------------------------------------------------------------- summary
def area_under_curve(n_labeled, values):
    """Trapezoid area under values vs labels, divided by the label range (a mean accuracy)."""
    n = np.asarray(n_labeled, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(n) < 2 or n[-1] == n[0]:
        return float(v.mean())
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(n)) / (n[-1] - n[0]))


def curves_by_pair(rows):
    pairs = {}
    for r in sorted(rows, key=lambda r: (r["strategy"], r["seed"], r["round"])):
        pairs.setdefault((r["strategy"], r["seed"]), []).append(r)
    return pairs


def summarize(rows, strategies, seeds, rounds):
    """Per strategy: AUC mean/std, final accuracy, seeds beating random, labels to reach random's final."""
    pairs = {k: v for k, v in curves_by_pair(rows).items() if len(v) == rounds + 1}
    out = {}
    for name in strategies:
        got = [s for s in seeds if (name, s) in pairs]
        if not got:
            continue
        n = np.array([r["n_labeled"] for r in pairs[(name, got[0])]])
        acc = np.array([[r["accuracy"] for r in pairs[(name, s)]] for s in got])
        f1 = np.array([[r["macro_f1"] for r in pairs[(name, s)]] for s in got])
        aucs = {s: area_under_curve(n, a) for s, a in zip(got, acc)}
        sel = np.array([[r["select_seconds"] for r in pairs[(name, s)][1:]] for s in got])
        trn = np.array([[r["train_seconds"] for r in pairs[(name, s)][1:]] for s in got])
        out[name] = {
            "seeds": got,
            "n_labeled": n.tolist(),
            "mean_accuracy": acc.mean(axis=0).tolist(),
            "auc_mean": float(np.mean(list(aucs.values()))),
            "auc_std": float(np.std(list(aucs.values()))),
            "auc_per_seed": {str(s): v for s, v in aucs.items()},
            "auc_macro_f1_mean": float(np.mean([area_under_curve(n, v) for v in f1])),
            "final_accuracy_mean": float(acc[:, -1].mean()),
            "final_accuracy_std": float(acc[:, -1].std()),
            "final_macro_f1_mean": float(f1[:, -1].mean()),
            "select_seconds_per_round": float(sel.mean()) if sel.size else 0.0,
            "train_seconds_per_round": float(trn.mean()) if trn.size else 0.0,
        }
    for ref in ("random", "modal_entropy"):
        if ref not in out:
            continue
        base = out[ref]
        for name, s in out.items():
            common = [x for x in s["seeds"] if x in base["seeds"]]
            deltas = [s["auc_per_seed"][str(x)] - base["auc_per_seed"][str(x)] for x in common]
            s[f"auc_minus_{ref}"] = float(np.mean(deltas)) if deltas else None
            if ref == "random":
                s["seeds_beating_random"] = int(sum(d > 0 for d in deltas))
                s["seeds_compared"] = len(common)
                target = base["mean_accuracy"][-1]
                reached = [nl for nl, a in zip(s["n_labeled"], s["mean_accuracy"]) if a >= target]
                s["random_final_accuracy"] = target
                s["labels_to_reach_random_final"] = int(reached[0]) if reached else None
                s["fraction_of_random_labels"] = (round(reached[0] / base["n_labeled"][-1], 3) if reached else None)
    return out


def summary_table(summary):
    head = ("| strategy | AUC mean ± std | Δ AUC vs random | final acc | seeds > random | labels to reach random's final "
            "(share of random's) | select s/round |")
    lines = [head, "|" + "---|" * 7]
    for name, s in summary.items():
        reach = s.get("labels_to_reach_random_final")
        reach_txt = "—" if "labels_to_reach_random_final" not in s else (
            "not reached" if reach is None else f"{reach} ({s['fraction_of_random_labels']:.0%})")
        delta = s.get("auc_minus_random")
        lines.append(
            f"| {name} | {s['auc_mean']:.4f} ± {s['auc_std']:.4f} | "
            f"{'—' if delta is None else f'{delta:+.4f}'} | {s['final_accuracy_mean']:.4f} | "
            f"{s.get('seeds_beating_random', '—')}/{s.get('seeds_compared', '—')} | {reach_txt} | "
            f"{s['select_seconds_per_round']:.2f} |")
    return "\n".join(lines)


def write_outputs(out, rows, strategies, seeds, run_args, wall_seconds):
    import plots

    summary = summarize(rows, strategies, seeds, run_args["rounds"])
    if not summary:
        return summary
    pairs = curves_by_pair(rows)
    curves = {}
    for name, s in summary.items():
        curves[name] = (s["n_labeled"], [[r["accuracy"] for r in pairs[(name, x)]] for x in s["seeds"]])
    title = f"{run_args['dataset']}, {run_args['model']}: test accuracy (mean, band = min-max over {len(seeds)} seeds)"
    save_figure(out / "learning_curves.png", plots.learning_curves(curves, title=title))
    save_json(out / "summary.json", {"args": run_args, "seeds": list(seeds), "wall_seconds_this_run": wall_seconds,
                                     "strategies": summary})
    text = (f"Label-efficiency benchmark: {run_args['dataset']}, model {run_args['model']}, "
            f"{run_args['initial']} initial labels + {run_args['rounds']} rounds x {run_args['budget']}, "
            f"seeds {list(seeds)}, {run_args['steps']} steps per fit\n"
            f"AUC = area under test accuracy vs labels / label range. Wall time of this invocation: "
            f"{wall_seconds:.0f} s\n\n" + summary_table(summary) + "\n")
    save_text(out / "summary.txt", text)
    return summary


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
    p.add_argument("--alpha", type=float, default=0.2, help="uncertainty_clustering: share of the budget taken by entropy")
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
    if not 0.0 <= args.alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {args.alpha}")
    if not args.lr > 0:
        raise ValueError(f"lr must be > 0, got {args.lr}")
    checks.check_int(args.gnn_epochs, "gnn_epochs", low=1)
    return names


def main(argv=None):
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
    done = prepare_resume(out, run_args)
    curves_path = out / "curves.csv"
    seeds = list(range(args.seeds))
    params = {"uncertainty_clustering": {"alpha": args.alpha}, "gnn": {"epochs": args.gnn_epochs}}
    trainer = KerasTrainer(x_all.shape[1:], n_classes, arch=args.model, steps=args.steps, batch_size=args.batch_size,
                           lr=args.lr, schedule=args.schedule, weights_dir=out / "weights")
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
        trainer.start_seed(seed)
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


if __name__ == "__main__":
    sys.exit(run_cli(main))
