"""Label-efficiency benchmark: simulated labeling rounds, every strategy against random and modAL.

    python Evaluation/Benchmark/benchmark.py --dataset digits \\
        --strategies random,entropy,margin,least_confidence,intersection,uncertainty_clustering,gnn,modal_entropy \\
        --initial 50 --budget 25 --rounds 12 --seeds 5

For each seed and strategy: start from the same initial labeled set, then run the loop's
round (:func:`loop.round.run_round`, the code of ``al round``) with a simulated oracle: train
on the labels revealed so far, evaluate on the held-out test set, select ``--budget`` pool
items, reveal their labels (nothing else is ever revealed), repeat. Outputs in ``--out``
(default ``results/benchmark/`` in the working directory): ``curves.csv`` (one row per round,
appended as it runs), ``learning_curves.png``, ``summary.json``, ``summary.txt`` and
``run.json`` (the arguments: a rerun with the same ones skips finished (strategy, seed)
pairs and redoes partial ones; different ones are refused). See :mod:`benchmark.curves`.

Training is the loop's one recipe (:class:`loop.round.RoundTrainer`), controlled so that
differences come from the selections, not from training noise (measured on digits: with
epoch-capped early stopping, entropy lost to random by 0.07 AUC; with these controls it won
in every seed): within a seed every fit starts from the same saved initial weights and
optimizer state, is re-seeded, and runs a set number of optimiser steps (``--steps``, grown
with the labeled set by ``--epochs-per-fit``, :func:`loop.round.fit_steps`) with no validation
split, the learning rate decaying to 0 along a cosine (``--schedule cosine``). Round 0 (the
initial set) is trained once per seed and shared by every strategy. Each round also records
what the stopping criteria read: Cohen's kappa between this and the previous round's
predictions on a fixed stop set, the pool's mean entropy and the largest entropy among the
selected items.

Data of every kind goes through the same loop: images (``small_cnn`` by default), tables
(``mlp``, its standardisation fitted on the initial labeled rows, :func:`backbones.adapt_data`) and text (``textmlp``, its
vocabulary fitted on the pool's text); ``--model`` overrides.
``--selection-space lsa``: on text, the distance-based strategies measure distances in a
label-free LSA space of the pool (:mod:`strategies.space`). ``--features patches``: on images,
the model is a linear classifier (``--model mlp``: the MLP) on k-means patch features learned
from each seed's pool without labels (:mod:`features.patches`), and every strategy reads its
embeddings, i.e. those features standardised; ``auto`` then switches at
``strategies.auto.PROBE_SWITCH_LABELS_PER_CLASS`` (``--auto-switch`` overrides). ``--embeddings FILE``:
the user's own embeddings of the data set's items are the features (:mod:`features.embeddings`).
"""
import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from labelnext.utils import checks
from labelnext import strategies as st
from labelnext.training.backbones import ARCHS, GRAPH_ARCHS, adapt_data, default_lr
from labelnext.benchmark.curves import (append_curve, prepare_resume, read_curves, summary_table,
                               write_outputs)
from labelnext.utils.console import progress, run_cli
from labelnext.data import kinds, load_dataset, with_holdout
from labelnext.features.embeddings import check_request, embeddings_for, file_digest
from labelnext.gnn.scores import entropy_uncertainty as normalized_entropy
from labelnext.features.patches import FEATURES, N_CENTROIDS, features_model, patch_features
from labelnext.features.pretrained import INPUT_SIZE as PRETRAINED_SIZE, N_FEATURES as N_PRETRAINED
from labelnext.features.pretrained import default_cache_dir, encode_cached
from labelnext.strategies.space import SELECTION_SPACES, check_space, may_use_space, pool_space
from labelnext.strategies.auto import PROBE_SWITCH_LABELS_PER_CLASS, SWITCH_LABELS_PER_CLASS, auto_params, switch_for
from labelnext.training.trainer import SCHEDULES, draw_labeled_set
from labelnext.loop.evaluation import agreement, stop_set
from labelnext.loop.learner import candidates_for
from labelnext.loop.round import EPOCHS_PER_FIT, STEPS, fit_round, round_trainer, run_round

DEFAULT_STRATEGIES = ("random", "entropy", "margin", "least_confidence", "intersection", "uncertainty_clustering",
                      "gnn", "modal_entropy")
MODELS = (*ARCHS, *GRAPH_ARCHS, "auto")
# Arguments that change the numbers: a curves.csv is only resumed with the same ones.
# Strategies and the number of seeds may change between runs (pairs are independent).
RUN_KEYS = ("dataset", "model", "image_size", "initial", "initial_mode", "budget", "budget_ratio", "rounds", "steps",
            "epochs_per_fit", "batch_size", "lr", "schedule", "fine_tune", "pool_size", "test_size", "dbal_beta",
            "gnn_epochs", "selection_space", "features", "auto_switch", "weights", "drop_columns", "keep_columns",
            "embeddings", "embeddings_digest")
# Keys added after a run was made compare equal to their value then: a folder of an older
# version resumes with the recipe it was made with (constant rate, fixed steps) only.
KEY_DEFAULTS = {"schedule": "constant", "epochs_per_fit": 0.0, "budget_ratio": None, "selection_space": "model",
                "features": "raw", "auto_switch": SWITCH_LABELS_PER_CLASS,
                "weights": None, "drop_columns": None, "keep_columns": None, "embeddings": None,
                "embeddings_digest": None}



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
def load_data(dataset, image_size, drop_columns=None, keep_columns=None, embeddings=None):
    """Training items with known labels, a test split (carved from training when there is none),
    the number of classes and the data kind ('image', 'tabular' or 'text'); with ``embeddings`` (a
    file), the items are its rows (:func:`features.embeddings.embeddings_for`)."""
    ds = load_dataset(dataset, image_size=image_size, drop_columns=drop_columns, keep_columns=keep_columns,
                      holdout=embeddings is None)
    if embeddings is not None:  # matched to the items as listed; the rows follow them into a held-out split
        user = embeddings_for(embeddings, ds, holdout=True)
        ds = replace(with_holdout(ds), x_train=user.pool, x_test=user.test)
    for note in ds.notes:
        if note.startswith("warning:"):
            progress(note)
    known = ds.y_train >= 0
    x, y = ds.x_train[known], ds.y_train[known]
    if ds.x_test is not None and ds.y_test is not None and (ds.y_test >= 0).any():
        keep = ds.y_test >= 0
        return x, y, ds.x_test[keep], ds.y_test[keep], ds.n_classes, ds.kind
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    return x[tr], y[tr], x[te], y[te], ds.n_classes, ds.kind


def seed_split(n_pool, n_test, random_state, pool_size=None, test_size=None):
    """Rows of the pool and the test set for one seed (all rows when no size is given)."""
    rng = np.random.RandomState(random_state)
    pool = np.arange(n_pool) if not pool_size or pool_size >= n_pool else np.sort(rng.choice(n_pool, pool_size, replace=False))
    test = np.arange(n_test) if not test_size or test_size >= n_test else np.sort(rng.choice(n_test, test_size, replace=False))
    return pool, test


def initial_rows(y, size, random_state, mode="stratified"):
    """The initial labeled rows for a seed: the same for every strategy."""
    return draw_labeled_set(y, size, random_state=random_state, stratified=(mode == "stratified"))


# --------------------------------------------------------------------------- simulation
def train_round0(trainer, seed, x_pool, labels, x_test, y_test):
    """Fit on the initial labels (``labels``: -1 elsewhere) once per seed; every strategy starts from it.

    Returns
    -------
    fit : loop.round.Fit
    weights : list of ndarray
        The model's weights (where ``--fine-tune`` continues from).
    """
    fit = fit_round(trainer, x_pool, labels, seed=seed, x_test=x_test, y_test=y_test)
    return fit, trainer.get_weights()


def run_pair(strategy, seed, *, x_pool, oracle, initial, x_test, y_test, trainer, round0, budget, rounds,
             fine_tune=False, params=None, on_round=None, stop_rows=None, space=None):
    """Simulate ``rounds`` labeling rounds of one strategy; returns the CSV rows.

    Every round is :func:`loop.round.run_round`, the round of ``al round``: train on the labels
    revealed so far, evaluate, select ``budget`` rows; then the oracle reveals the selected
    labels. Round 0's fit is ``round0`` (shared by the strategies of a seed); the last round
    trains and evaluates only. Training reads labels through ``oracle.known_labels()`` (revealed
    rows only), and so do the strategies (-1 for the pool).

    Besides accuracy, each row holds what the stopping criteria read: ``stop_kappa``
    (Cohen's kappa of this and the previous model's predicted classes on ``stop_rows``,
    default every pool row), ``pool_mean_entropy`` (unlabeled rows, normalised) and
    ``selected_max_entropy`` (the largest normalised entropy among the picks that led to this
    round, under the model that picked them).

    Parameters
    ----------
    trainer : loop.round.RoundTrainer, or an object with its ``fit``, ``predict``, ``head``,
        ``dropout_rate`` and ``get_weights``; started under ``seed``.
    round0 : (Fit, weights)
        :func:`train_round0`'s answer.
    space : ndarray of shape (n_pool, n_features), optional
        Label-free features of the pool that replace the model's embeddings for the methods
        of :func:`strategies.space.uses_space`.
    """
    oracle.query(initial)
    stop_rows = np.arange(len(oracle)) if stop_rows is None else np.asarray(stop_rows, dtype=np.int64)
    fit, weights = round0
    rows, before, select_seconds, picked_entropy = [], None, 0.0, math.nan
    for r in range(rounds + 1):
        labels = oracle.known_labels()
        mask = labels >= 0
        result = run_round(trainer, x_pool, labels, strategy=strategy, budget=budget if r < rounds else None,
                           seed=seed, number=r, x_test=x_test, y_test=y_test, params=params, space=space,
                           fit=fit if r == 0 else None, start_weights=weights if fine_tune else None)
        fit = result.fit
        if fine_tune and r > 0:
            weights = trainer.get_weights()
        after = fit.probs[stop_rows].argmax(axis=1)
        row = {"strategy": strategy, "seed": seed, "round": r, "n_labeled": int(mask.sum()),
               "accuracy": fit.metrics["accuracy"], "macro_f1": fit.metrics["macro_f1"],
               "select_seconds": select_seconds, "train_seconds": fit.info["train_seconds"],
               "steps": fit.info.get("steps", math.nan),
               "stop_kappa": math.nan if before is None else agreement(before, after),
               "pool_mean_entropy": float(normalized_entropy(fit.probs[~mask]).mean()) if (~mask).any() else 0.0,
               "selected_max_entropy": picked_entropy, "learner": fit.info.get("learner", {}).get("arch", "")}
        rows.append(row)
        if on_round:
            on_round(row)
        if result.selection is not None:
            picked = result.selection.rows
            select_seconds = result.selection.seconds
            picked_entropy = float(normalized_entropy(fit.probs[picked]).max())
            oracle.query(picked)
        before = after
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
                   "image-folder tree ROOT/{train,test}/<class>/, .npz (x_train, y_train, x_test, y_test), a .tar.gz "
                   "of a tree, or a table / text file (.csv, .tsv, .parquet)")
    p.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                   help=f"comma-separated: {', '.join(st.available_strategies())}, or <subpool>_<strategy> "
                   f"with subpool in {', '.join(st.SUBPOOLS)} (e.g. anchoral_entropy)")
    p.add_argument("--initial", type=int, default=50, help="size of the initial labeled set (same for every strategy within a seed)")
    p.add_argument("--initial-mode", default="stratified", choices=("stratified", "random"), help="how the initial set is drawn")
    p.add_argument("--budget", type=int, default=None, help="labels revealed per round (default 25)")
    p.add_argument("--budget-ratio", type=float, default=None,
                   help="labels revealed per round as a fraction of the pool (instead of --budget)")
    p.add_argument("--rounds", type=int, default=12, help="selection rounds after the initial fit")
    p.add_argument("--seeds", type=int, default=5, help="run seeds 0 .. N-1 (initial set, weights, subsamples)")
    p.add_argument("--model", default=None, choices=MODELS,
                   help="base model; default by data kind: small_cnn for images (a ~60k-parameter 3-block CNN, fast), "
                   "mlp for tables, textmlp for text. logreg: scikit-learn's logistic regression on standardised "
                   "features (tables, --features); spread: label spreading over the pool's nearest-neighbour graph "
                   "(--features); blend: spread's vote averaged with logreg's probabilities (--features); auto: each "
                   "round, the best by cross-validation on the labels of spread and blend "
                   "(--features pretrained), spread, logreg and mlp (other --features) or logreg and mlp (tables), "
                   "recorded in curves.csv's learner column")
    p.add_argument("--weights", default=None, help="mobilenetv3's initial weights: imagenet (needs network once) or "
                   "the path of a local weights file of MobileNetV3Small without its top; default: random")
    p.add_argument("--image-size", type=int, default=None,
                   help="side every image is resized to; default the encoder's 160 with --features pretrained (as al "
                   "init), 8 for digits with small_cnn (their native 8x8), else 32")
    p.add_argument("--steps", type=int, default=STEPS, help="optimiser steps per fit at least (see --epochs-per-fit)")
    p.add_argument("--epochs-per-fit", type=float, default=EPOCHS_PER_FIT,
                   help="grow the steps of a fit to this many passes over the labeled set when --steps is fewer, "
                   "rounded up to a multiple of --steps; 0 keeps --steps for every fit")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (the peak of the cosine schedule); "
                   "default: the model's (0.01 for the table MLP, else 0.001)")
    p.add_argument("--schedule", default="cosine", choices=SCHEDULES,
                   help="learning rate over a fit's steps: cosine decay to 0 (the evaluated model is the end of an "
                   "annealed run, not a noisy last step), or constant")
    p.add_argument("--fine-tune", action="store_true",
                   help="continue each round from the previous round's weights instead of the seed's initial weights")
    p.add_argument("--pool-size", type=int, default=None, help="subsample the training pool to this many items (per seed)")
    p.add_argument("--test-size", type=int, default=None, help="subsample the test set to this many items (per seed)")
    p.add_argument("--dbal-beta", type=int, default=10, help="dbal / uncertainty_clustering: cluster the beta x budget "
                   "most uncertain items")
    p.add_argument("--auto-switch", type=float, default=None,
                   help="auto: labels per class from which it runs DBAL instead of TypiClust; default "
                   f"{SWITCH_LABELS_PER_CLASS:g}, or {PROBE_SWITCH_LABELS_PER_CLASS:g} for the linear model on patch features")
    p.add_argument("--gnn-epochs", type=int, default=200, help="gnn: GraphSAGE epoch cap per round")
    p.add_argument("--selection-space", default="model", choices=SELECTION_SPACES,
                   help="where the distance-based strategies (typiclust, probcover, coreset, dbal, cluster_margin, "
                   "and auto when it picks one) measure distances: the base model's embeddings, or (text) a "
                   "latent semantic analysis of the pool's text learned without labels")
    p.add_argument("--features", default="raw", choices=FEATURES,
                   help="what the model is trained on and the strategies read: the data as loaded, or (images) k-means "
                   "patch features learned from each seed's pool without labels (Coates et al. 2011), or pretrained "
                   "EfficientNet-Lite2 features (the 'pretrained' extra), or your own (--embeddings), for auto (the "
                   "default on pretrained features), logreg (on embeddings), linear (on patches), spread, blend or mlp")
    p.add_argument("--embeddings", default=None, metavar="FILE",
                   help="your own embeddings of the items as the features (implies --features embeddings): a .npy "
                   "or .parquet of one row per item of the data set as loaded, the training items then the test "
                   "split's, or a Parquet file keyed by a 'path' column (image and text folders); see docs/data.md")
    p.add_argument("--out", default=str(Path("results", "benchmark")), help="output folder (relative to the working directory)")
    p.add_argument("--drop-columns", default=None, metavar="A,B", help="a table's feature columns to leave out, e.g. id,row_number (every column that looks like a leak is named: an ID, a counter, a constant, values that sort the classes into blocks)")
    p.add_argument("--keep-columns", default=None, metavar="A,B", help="a table's only feature columns to use")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _check_args(args):
    """Every argument that can be checked without the data; returns the strategy names."""
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not names:
        raise ValueError("strategies is empty: pass e.g. --strategies random,entropy")
    for name in names:
        st.get_strategy(name)
    if len(set(names)) != len(names):
        raise ValueError(f"strategies lists a name twice: {args.strategies!r}")
    checks.check_int(args.initial, "initial", low=2)
    if args.budget is not None and args.budget_ratio is not None:
        raise ValueError(f"pass --budget ({args.budget}) or --budget-ratio ({args.budget_ratio}), not both")
    if args.budget_ratio is not None:
        checks.check_float(args.budget_ratio, "budget_ratio", 0.0, 1.0, low_open=True, high_open=True)
    else:
        args.budget = checks.check_int(25 if args.budget is None else args.budget, "budget", low=1)
    checks.check_int(args.rounds, "rounds", low=1)
    checks.check_int(args.seeds, "seeds", low=1)
    checks.check_int(args.steps, "steps", low=1)
    checks.check_float(args.epochs_per_fit, "epochs_per_fit", 0.0, None)
    checks.check_int(args.batch_size, "batch_size", low=1)
    if args.pool_size is not None:
        checks.check_int(args.pool_size, "pool_size", low=2)
    if args.test_size is not None:
        checks.check_int(args.test_size, "test_size", low=1)
    # --lr inf or nan would train to NaN and fail only after rows were written.
    if args.lr is not None:
        checks.check_float(args.lr, "lr", 0.0, None, low_open=True)
    checks.check_int(args.dbal_beta, "dbal_beta", low=1)
    checks.check_int(args.gnn_epochs, "gnn_epochs", low=1)
    args.features = check_request(args.features, args.embeddings)
    args.embeddings_digest = None
    if args.embeddings is not None:  # run.json keeps where they came from and their content: a changed file
        args.embeddings = str(Path(args.embeddings).resolve())  # is another run, never resumed into this one
        args.embeddings_digest = file_digest(args.embeddings) if Path(args.embeddings).is_file() else None
    return names


def _resolve_model(args, kind):
    """The base model for the data kind (``--model`` overrides, when it fits the kind)."""
    if args.features != "raw":
        return features_model(args.features, kind, args.model)
    if args.model is None:
        return kinds.get(kind).default_model
    if args.model not in (*kinds.get(kind).models, "auto"):
        raise ValueError(f"model must be one of {list(kinds.get(kind).models)} for {kind} data, got {args.model!r}")
    return args.model


def main(argv=None):
    """Run (or resume) the benchmark described by the command line ``argv``; prints the summary table."""
    args = build_parser().parse_args(argv)
    names = _check_args(args)
    say = lambda msg: progress(msg, not args.quiet)  # noqa: E731
    wall = time.perf_counter()
    if args.image_size is None:
        # As al init: pretrained features see the images at the encoder's size.
        args.image_size = (PRETRAINED_SIZE if args.features == "pretrained" else
                           8 if args.dataset == "digits" and args.model in (None, "small_cnn", "auto") else 32)
    x_all, y_all, xt_all, yt_all, n_classes, kind = load_data(args.dataset, args.image_size, args.drop_columns,
                                                              args.keep_columns, args.embeddings)
    args.model = _resolve_model(args, kind)
    if args.lr is None and args.model != "auto":  # auto: each candidate learner's own rate
        args.lr = default_lr(args.model)  # recorded in run.json as the value used
    if not kinds.get(kind).images:
        args.image_size = None  # not a parameter of tables and text
    elif args.model == "mobilenetv3" and args.image_size < 32:
        raise ValueError(f"image_size must be >= 32 for mobilenetv3, got {args.image_size}")
    check_space(args.selection_space, kind)
    n_pool = min(len(y_all), args.pool_size or len(y_all))
    if args.budget_ratio is not None:
        args.budget = max(1, int(round(args.budget_ratio * n_pool)))
    need = args.initial + args.rounds * args.budget
    if need > n_pool:
        raise ValueError(f"budget: initial ({args.initial}) + rounds ({args.rounds}) x budget ({args.budget}) = {need} "
                         f"labels, more than the pool of {n_pool} items")
    if args.auto_switch is None:  # recorded in run.json as the value used
        args.auto_switch = switch_for(args.model, args.features)
    params = {"uncertainty_clustering": {"beta": args.dbal_beta}, "dbal": {"beta": args.dbal_beta},
              "gnn": {"epochs": args.gnn_epochs},
              "auto": dict(auto_params(args.model, args.features), switch_labels_per_class=args.auto_switch)}
    st.check_params(params)

    input_shape = {"patches": (4 * N_CENTROIDS,), "pretrained": (N_PRETRAINED,)}.get(args.features, x_all.shape[1:])

    # Built before anything is written: it checks the training arguments.
    trainer = round_trainer(input_shape, n_classes, arch=args.model, weights=args.weights, steps=args.steps,
                            epochs_per_fit=args.epochs_per_fit, batch_size=args.batch_size, lr=args.lr,
                            schedule=args.schedule, candidates=candidates_for(kinds.get(kind), args.features),
                            features=args.features)
    run_args = {k: getattr(args, k) for k in RUN_KEYS}
    out = Path(args.out)
    # Checks run.json against these arguments, then writes it (atomically) before any row.
    done = prepare_resume(out, run_args, KEY_DEFAULTS)
    curves_path = out / "curves.csv"
    seeds = list(range(args.seeds))
    total = len(seeds) * len(names)
    say(f"benchmark: {args.dataset} ({kind}, {len(y_all)} train, {len(yt_all)} test, {n_classes} classes), model "
        f"{args.model}, {len(names)} strategies x {len(seeds)} seeds x {args.rounds} rounds of {args.budget}; "
        f"{len([p for p in done if p[0] in names and p[1] in seeds])} of {total} pairs already done")
    k = 0
    for seed in seeds:
        todo = [n for n in names if (n, seed) not in done]
        k += len(names) - len(todo)
        if not todo:
            continue
        pool, test = seed_split(len(y_all), len(yt_all), seed, args.pool_size, args.test_size)
        x_pool, y_pool, x_test, y_test = x_all[pool], y_all[pool], xt_all[test], yt_all[test]
        if args.features == "patches":
            start = time.perf_counter()
            x_pool, x_test = patch_features(x_pool, x_test, random_state=seed)
            say(f"seed {seed}: patch features {x_pool.shape} of the pool and the test set in "
                f"{time.perf_counter() - start:.1f} s")
        elif args.features == "pretrained":
            # Each seed's pool and test images encoded once, kept by content in the data cache: a rerun
            # (another --model, more strategies) reads them back. Only the rows a seed draws are encoded.
            x_pool, x_test = (encode_cached(x, default_cache_dir(), progress=say) for x in (x_pool, x_test))
        initial = initial_rows(y_pool, args.initial, seed, args.initial_mode)
        # The seed's initial weights are saved once and reloaded on resume.
        trainer.start(seed, adapt=adapt_data(args.model, x_pool, initial, args.features),
                      weights_file=out / "weights" / f"initial_weights_seed{seed}.npz")
        # The initial labels are revealed by an oracle of their own: round 0 is shared by all strategies.
        labels0 = np.full(len(y_pool), -1, dtype=np.int64)
        labels0[initial] = Oracle(y_pool).query(initial)
        round0 = train_round0(trainer, seed, x_pool, labels0, x_test, y_test)
        say(f"seed {seed}: round 0 on {len(initial)} labels: accuracy {round0[0].metrics['accuracy']:.4f} "
            f"({round0[0].info['train_seconds']:.1f} s)")
        stop_rows = stop_set(len(pool), seed)
        # Computed only when a strategy of this seed can read it (seconds of LSA otherwise wasted).
        space, space_seconds = pool_space(args.selection_space if may_use_space(todo) else "model", x_pool,
                                          random_state=seed)
        if space is not None:
            say(f"seed {seed}: {args.selection_space} features {space.shape} of the pool in {space_seconds:.1f} s")
        for name in todo:
            k += 1

            def on_round(row, name=name, k=k):
                append_curve(curves_path, row)
                say(f"[{k}/{total}] {name} seed {seed} round {row['round']}/{args.rounds}: {row['n_labeled']} labels, "
                    f"accuracy {row['accuracy']:.4f}, macro-F1 {row['macro_f1']:.4f} "
                    f"(select {row['select_seconds']:.1f} s, train {row['train_seconds']:.1f} s"
                    f"{', learner ' + row['learner'] if row['learner'] else ''})")

            run_pair(name, seed, x_pool=x_pool, oracle=Oracle(y_pool), initial=initial, x_test=x_test, y_test=y_test,
                     trainer=trainer, round0=round0, budget=args.budget, rounds=args.rounds,
                     fine_tune=args.fine_tune, params=params, on_round=on_round, stop_rows=stop_rows, space=space)
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
