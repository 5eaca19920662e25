"""labelnext against scikit-activeml on the same initial labels and test sets.

    python -m benchmarks.peer_skactiveml --dataset digits --initial 20 --budget 20 --rounds 10 --seeds 3
    python -m benchmarks.peer_skactiveml --dataset ../shared/data/letter-recognition.csv \\
        --initial 52 --budget 100 --rounds 8 --seeds 3 --out results/peer/letter

Our side is the label-efficiency benchmark itself (``labelnext.benchmark.simulate.main``, the
code of ``Evaluation/Benchmark/benchmark.py``) with ``--model`` and ``--strategies`` (default
``random,auto``), written to ``OUT/labelnext/``. The peer side is scikit-activeml 1.0.1 with
scikit-learn's ``LogisticRegression`` on features standardised on each seed's pool (no labels
needed); each seed's pool, test set and initial labeled rows come from the engine's own
``load_data``, ``seed_split`` and ``initial_rows`` with the arguments the engine recorded in
its ``run.json``. The peer's rows go to ``OUT/skactiveml/curves.csv`` in the engine's format, so a
rerun with the same arguments resumes both sides.

Per method: the mean test accuracy at every round, the AULC (the engine's definition,
``benchmark.curves.area_under_curve``: trapezoid area under accuracy vs labels divided by the
label range), the paired AULC difference to the random selection of the same learner with the
seeds it wins, and the same against labelnext's ``auto`` when it ran. Writes
``OUT/comparison.csv`` (one row per method) and ``OUT/comparison.md`` and prints the tables.

scikit-activeml is not a dependency of labelnext: install it where this script can import it,
e.g. ``pip install scikit-activeml==1.0.1``.
"""
import argparse
import csv
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

INSTALL_HINT = "skactiveml is not importable: pip install scikit-activeml==1.0.1"
# scikit-activeml pool strategies, built by _peer_strategy. probcover is exact but slow on
# large pools (about 30-45 s a round on 16,000 letter rows), hence not a default.
PEER_STRATEGIES = ("random", "margin", "entropy", "badge", "typiclust", "clue", "falcun", "coreset", "probcover")
DEFAULT_PEER = "random,margin,badge,typiclust,clue"
OURS, PEER = "labelnext", "skactiveml"
# Enough iterations for lbfgs to converge on standardised features at every labeled-set size measured.
LOGREG_MAX_ITER = 1000


def import_skactiveml():
    """The ``skactiveml`` module, or None when it (or one of its dependencies) is not importable."""
    try:
        with warnings.catch_warnings():
            # skactiveml imports skorch when present, which warns about pkg_resources.
            warnings.simplefilter("ignore")
            import skactiveml.pool  # noqa: F401
            import skactiveml.classifier  # noqa: F401
            import skactiveml.utils  # noqa: F401
    except ImportError:
        return None
    import skactiveml
    return skactiveml


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.peer_skactiveml",
        description="labelnext's label-efficiency benchmark (--model, --strategies) against scikit-activeml 1.0.1 "
        "with scikit-learn's LogisticRegression (--peer-strategies), on the same per-seed pool, test set and initial "
        "labels. Reports per method the mean test accuracy per round, the AULC and the paired difference to the "
        "same learner's random selection (and to labelnext's auto) with per-seed wins. Writes comparison.csv and "
        "comparison.md to --out (the engine's folder in OUT/labelnext, the peer's curves in OUT/skactiveml); reruns "
        "with the same arguments resume. Needs scikit-activeml (pip install scikit-activeml==1.0.1).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="digits", help="what the engine's --dataset takes: 'digits' or the path of a "
                   "table (.csv, .tsv, .parquet) or an image data set; text data are refused (the peer needs numbers)")
    p.add_argument("--model", default=None, help="labelnext's base model, passed to the engine unchanged; default: the "
                   "engine's for the data kind (small_cnn for images, mlp for tables)")
    p.add_argument("--strategies", default="random,auto", help="labelnext strategies, comma-separated (the engine's names)")
    p.add_argument("--peer-strategies", default=DEFAULT_PEER,
                   help=f"scikit-activeml strategies, comma-separated, from: {', '.join(PEER_STRATEGIES)} (margin, "
                   "entropy: UncertaintySampling; the others: the class of that name)")
    p.add_argument("--initial", type=int, default=20, help="initial labeled rows per seed (the engine's draw)")
    p.add_argument("--budget", type=int, default=20, help="labels revealed per round")
    p.add_argument("--rounds", type=int, default=10, help="selection rounds after the initial fit")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    p.add_argument("--pool-size", type=int, default=None, help="subsample each seed's pool (the engine's --pool-size)")
    p.add_argument("--test-size", type=int, default=None, help="subsample each seed's test set (the engine's --test-size)")
    p.add_argument("--out", default=str(Path("results", "peer_skactiveml")), help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _names(text, what, allowed=None):
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{what} must name strategies once each, got {text!r}")
    bad = [n for n in names if allowed is not None and n not in allowed]
    if bad:
        raise ValueError(f"{what}: unknown {bad}; choose from {', '.join(allowed)}")
    return names


# --------------------------------------------------------------------------- our side
def engine_argv(args, out):
    """The engine's command line for our side."""
    argv = ["--dataset", args.dataset, "--strategies", args.strategies, "--initial", str(args.initial),
            "--budget", str(args.budget), "--rounds", str(args.rounds), "--seeds", str(args.seeds), "--out", str(out)]
    for flag, value in (("--model", args.model), ("--pool-size", args.pool_size), ("--test-size", args.test_size)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--quiet"] if args.quiet else [])


# --------------------------------------------------------------------------- peer side
def peer_features(x):
    """Rows as flat float vectors; grey images stored as identical RGB channels keep one channel
    (three copies of every pixel would weaken the logistic regression's L2 penalty threefold)."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 3 and (x[..., :1] == x).all():
        x = x[..., :1]
    return x.reshape(len(x), -1).astype(np.float64)


def _peer_strategy(skal, name, seed):
    pool = skal.pool
    common = dict(missing_label=-1, random_state=seed)
    if name in ("margin", "entropy"):
        return pool.UncertaintySampling(method={"margin": "margin_sampling", "entropy": "entropy"}[name], **common)
    cls = {"random": pool.RandomSampling, "badge": pool.Badge, "typiclust": pool.TypiClust, "clue": pool.Clue,
           "falcun": pool.Falcun, "coreset": pool.CoreSet, "probcover": pool.ProbCover}[name]
    return cls(**common)


def run_peer_pair(skal, name, seed, *, x_pool, y_pool, x_test, y_test, initial, n_classes, budget, rounds,
                  on_round=None):
    """One scikit-activeml strategy from ``initial``: fit, test, query ``budget`` rows, reveal; rows in the engine's format.

    The classifier and the strategy see labels only of revealed rows (-1 elsewhere).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    clf = skal.classifier.SklearnClassifier(LogisticRegression(max_iter=LOGREG_MAX_ITER, random_state=seed),
                                            classes=np.arange(n_classes), missing_label=-1, random_state=seed)
    qs = _peer_strategy(skal, name, seed)
    labels = np.full(len(y_pool), -1, dtype=np.int64)
    labels[initial] = y_pool[initial]
    rows, select_seconds = [], 0.0
    for r in range(rounds + 1):
        start = time.perf_counter()
        clf.fit(x_pool, labels)
        train_seconds = time.perf_counter() - start
        pred = clf.predict(x_test)
        row = {"strategy": f"{PEER}:{name}", "seed": seed, "round": r, "n_labeled": int((labels >= 0).sum()),
               "accuracy": float(accuracy_score(y_test, pred)),
               "macro_f1": float(f1_score(y_test, pred, average="macro", labels=np.arange(n_classes), zero_division=0)),
               "select_seconds": select_seconds, "train_seconds": train_seconds}
        rows.append(row)
        if on_round:
            on_round(row)
        if r == rounds:
            break
        start = time.perf_counter()
        # call_func passes each strategy only the arguments its query takes (clf or estimator, or neither).
        picked = skal.utils.call_func(qs.query, X=x_pool, y=labels, clf=clf, estimator=clf, fit_clf=False,
                                      fit_estimator=False, batch_size=budget)
        select_seconds = time.perf_counter() - start
        picked = np.asarray(picked, dtype=np.int64)
        if (labels[picked] >= 0).any() or len(np.unique(picked)) != budget:
            raise RuntimeError(f"{name} selected labeled or repeated rows in round {r} of seed {seed}")
        labels[picked] = y_pool[picked]
    return rows


# --------------------------------------------------------------------------- comparison
def compare(rows, methods, seeds, rounds):
    """Per method: mean accuracy per round, AULC mean/std/per seed, paired Δ to its learner's random and to labelnext auto."""
    from labelnext.benchmark.curves import area_under_curve, curves_by_pair

    pairs = {k: v for k, v in curves_by_pair(rows).items() if len(v) == rounds + 1}
    out = {}
    for m in methods:
        got = [s for s in seeds if (m, s) in pairs]
        if not got:
            continue
        n = [r["n_labeled"] for r in pairs[(m, got[0])]]
        acc = np.array([[r["accuracy"] for r in pairs[(m, s)]] for s in got])
        aucs = {s: area_under_curve(n, a) for s, a in zip(got, acc)}
        sel = [r["select_seconds"] for s in got for r in pairs[(m, s)][1:]]
        out[m] = {"n_labeled": n, "mean_accuracy": acc.mean(axis=0).tolist(), "aulc": aucs,
                  "aulc_mean": float(np.mean(list(aucs.values()))), "aulc_std": float(np.std(list(aucs.values()))),
                  "select_seconds": float(np.mean(sel)) if sel else 0.0}
    for m, s in out.items():
        for key, ref in (("random", f"{m.split(':')[0]}:random"), ("auto", f"{OURS}:auto")):
            if ref not in out or ref == m:
                continue
            common = [x for x in s["aulc"] if x in out[ref]["aulc"]]
            deltas = [s["aulc"][x] - out[ref]["aulc"][x] for x in common]
            s[f"vs_{key}"] = (float(np.mean(deltas)), int(sum(d > 0 for d in deltas)), len(common))
    return out


def _delta(s, key):
    if f"vs_{key}" not in s:
        return "—"
    d, wins, n = s[f"vs_{key}"]
    return f"{d:+.4f} ({wins}/{n})"


def tables(result):
    """Two Markdown tables: AULC with the paired differences, and the mean accuracy at every round."""
    lines = ["| method | AULC mean ± std | Δ vs same learner's random (seeds >) | Δ vs labelnext auto (seeds >) | "
             "select s/round |", "|---|---|---|---|---|"]
    for m, s in result.items():
        lines.append(f"| {m} | {s['aulc_mean']:.4f} ± {s['aulc_std']:.4f} | {_delta(s, 'random')} | "
                     f"{_delta(s, 'auto')} | {s['select_seconds']:.2f} |")
    first = next(iter(result.values()))
    lines += ["", "| method | " + " | ".join(str(n) for n in first["n_labeled"]) + " |",
              "|---|" + "---|" * len(first["n_labeled"])]
    for m, s in result.items():
        lines.append(f"| {m} | " + " | ".join(f"{a:.3f}" for a in s["mean_accuracy"]) + " |")
    return "\n".join(lines)


def write_comparison(out, result):
    rounds = len(next(iter(result.values()))["n_labeled"])
    head = ["learner", "strategy", "seeds", "aulc_mean", "aulc_std", "aulc_minus_random", "seeds_beating_random",
            "aulc_minus_labelnext_auto", "seeds_beating_labelnext_auto", "select_seconds_per_round"]
    head += [f"accuracy_round{r}" for r in range(rounds)]
    with open(out / "comparison.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(head)
        for m, s in result.items():
            learner, strategy = m.split(":", 1)
            rnd, aut = s.get("vs_random", (math.nan, "", "")), s.get("vs_auto", (math.nan, "", ""))
            w.writerow([learner, strategy, len(s["aulc"]), f"{s['aulc_mean']:.6f}", f"{s['aulc_std']:.6f}",
                        f"{rnd[0]:.6f}", rnd[1], f"{aut[0]:.6f}", aut[1], f"{s['select_seconds']:.3f}"]
                       + [f"{a:.6f}" for a in s["mean_accuracy"]])


# --------------------------------------------------------------------------- main
def main(argv=None):
    args = build_parser().parse_args(argv)
    skal = import_skactiveml()
    if skal is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    peer_names = _names(args.peer_strategies, "--peer-strategies", PEER_STRATEGIES)
    ours_names = _names(args.strategies, "--strategies")

    from labelnext.benchmark import simulate
    from labelnext.benchmark.curves import append_curve, prepare_resume, read_curves
    from labelnext.io.files import load_json
    from labelnext.utils.console import progress
    from sklearn.preprocessing import StandardScaler

    def say(msg):
        progress(msg, not args.quiet)

    wall = time.perf_counter()
    out = Path(args.out)
    # Refused before hours of the engine's rounds are spent on it.
    kind = simulate.load_data(args.dataset, 32)[5]
    if kind == "text":
        raise ValueError(f"dataset is {kind} data: the peer's logistic regression needs numeric features")
    say(f"peer: labelnext {ours_names} via the benchmark engine -> {out / OURS}/")
    simulate.main(engine_argv(args, out / OURS))
    ours_seconds = time.perf_counter() - wall

    # The engine's own split and initial draw, with the arguments it recorded.
    run = load_json(out / OURS / "run.json")
    x_all, y_all, xt_all, yt_all, n_classes, _ = simulate.load_data(
        args.dataset, run["image_size"] or 32, run.get("drop_columns"), run.get("keep_columns"))
    peer_dir = out / PEER
    run_args = {"dataset": args.dataset, "initial": args.initial, "initial_mode": run["initial_mode"],
                "budget": run["budget"], "rounds": args.rounds, "pool_size": args.pool_size,
                "test_size": args.test_size, "image_size": run["image_size"], "learner": "LogisticRegression",
                "logreg_max_iter": LOGREG_MAX_ITER, "skactiveml": skal.__version__}
    done = prepare_resume(peer_dir, run_args)
    curves = peer_dir / "curves.csv"
    seeds = list(range(args.seeds))
    for seed in seeds:
        todo = [n for n in peer_names if (f"{PEER}:{n}", seed) not in done]
        if not todo:
            continue
        pool, test = simulate.seed_split(len(y_all), len(yt_all), seed, args.pool_size, args.test_size)
        x_pool, y_pool = peer_features(x_all[pool]), y_all[pool]
        scaler = StandardScaler().fit(x_pool)
        x_pool, x_test, y_test = scaler.transform(x_pool), scaler.transform(peer_features(xt_all[test])), yt_all[test]
        initial = simulate.initial_rows(y_pool, args.initial, seed, run["initial_mode"])
        for name in todo:
            def on_round(row, name=name):
                append_curve(curves, row)
                say(f"skactiveml {name} seed {seed} round {row['round']}/{args.rounds}: {row['n_labeled']} labels, "
                    f"accuracy {row['accuracy']:.4f} (select {row['select_seconds']:.1f} s)")

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                run_peer_pair(skal, name, seed, x_pool=x_pool, y_pool=y_pool, x_test=x_test, y_test=y_test,
                              initial=initial, n_classes=n_classes, budget=run["budget"], rounds=args.rounds,
                              on_round=on_round)

    ours_rows = [dict(r, strategy=f"{OURS}:{r['strategy']}") for r in read_curves(out / OURS / "curves.csv")]
    rows = ours_rows + read_curves(curves)
    methods = [f"{OURS}:{n}" for n in ours_names] + [f"{PEER}:{n}" for n in peer_names]
    result = compare(rows, methods, seeds, args.rounds)
    labels = {tuple(s["n_labeled"]) for s in result.values()}
    if len(labels) != 1:
        raise RuntimeError(f"the two sides labeled different numbers of rows per round: {sorted(labels)}")
    seconds = time.perf_counter() - wall
    text = (f"{args.dataset}: labelnext (model {run['model']}) vs scikit-activeml {skal.__version__} "
            f"(LogisticRegression on standardised features), {args.initial} initial labels + {args.rounds} rounds x "
            f"{run['budget']}, seeds {seeds}; same pool, test set and initial labels per seed. AULC = area under test "
            f"accuracy vs labels / label range; Δ = mean over seeds of the paired AULC difference. Wall time "
            f"{seconds:.0f} s (labelnext side {ours_seconds:.0f} s).\n\n{tables(result)}\n")
    write_comparison(out, result)
    (out / "comparison.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    from labelnext.utils.console import run_cli
    sys.exit(run_cli(main))
