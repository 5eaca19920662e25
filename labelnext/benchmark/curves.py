"""The label-efficiency benchmark's results: ``curves.csv`` (rewritten atomically as rounds
finish, resumed by (strategy, seed) pair) and the summary written from it.

``curves.csv`` has one row per (strategy, seed, round) with the columns of :data:`COLUMNS`;
``run.json`` beside it holds the arguments that change the numbers. ``run.json`` is written
(atomically) before anything else, so a rerun into the same folder with different arguments
is refused even when the first run was killed before its first row.

The summary gives, per strategy: the area under the learning curve (AULC), its paired
difference to random with a bootstrap confidence interval over seeds and a verdict, the
noise of the mean curve (how often and how far it drops between consecutive rounds), and
the round at which each stopping criterion would have fired.
"""
import csv
import math
from pathlib import Path

import numpy as np

from labelnext.io import plots
from labelnext.io.files import atomic_path, load_json, save_figure, save_json, save_text
# The loop's stabilizing-predictions criterion (its stopping signal reads the same thresholds).
from labelnext.loop.evaluation import SP_KAPPA, SP_WINDOW

COLUMNS = ("strategy", "seed", "round", "n_labeled", "accuracy", "macro_f1", "select_seconds", "train_seconds",
           "steps", "stop_kappa", "pool_mean_entropy", "selected_max_entropy", "learner")
_INTS = ("seed", "round", "n_labeled")
_FLOATS = ("accuracy", "macro_f1", "select_seconds", "train_seconds")
# Columns added after the first release: empty (NaN) in rows of older files and where undefined (round 0).
_OPTIONAL = ("steps", "stop_kappa", "pool_mean_entropy", "selected_max_entropy")

# Stopping criteria. Stabilizing predictions (Bloodgood & Vijay-Shanker 2009): Cohen's kappa
# between consecutive models' predictions on a fixed stop set >= SP_KAPPA for SP_WINDOW rounds
# in a row (the paper's defaults, in loop/evaluation.py). Overall-uncertainty and max-confidence (Zhu, Wang & Hovy 2008):
# the mean entropy of the unlabeled pool, resp. the largest entropy among the items a round
# selected, below a threshold; entropies are divided by log(n_classes), so thresholds are in [0, 1].
OU_THRESHOLD = 0.1
MC_THRESHOLD = 0.1
# Bootstrap of the paired AULC difference over seeds: resamples, interval and a fixed seed
# (the summary must be a pure function of curves.csv).
BOOTSTRAP_RESAMPLES, BOOTSTRAP_LEVEL, BOOTSTRAP_SEED = 10_000, 0.95, 0
# A drop of the mean curve between consecutive rounds larger than this counts as noise (issue 13's target).
DROP_TOLERANCE = 0.01


# --------------------------------------------------------------------------- curves.csv
def _number(value, cast):
    return math.nan if value in (None, "") else cast(value)


def _typed(row):
    out = {"strategy": row["strategy"]}
    for key in _INTS:
        out[key] = int(row[key])
    for key in _FLOATS:
        out[key] = float(row[key])
    for key in _OPTIONAL:
        out[key] = _number(row.get(key), float)
    out["learner"] = row.get("learner") or ""  # the learner --model auto picked; empty otherwise
    return out


def read_curves(path):
    """Every row of ``path`` with ints and floats parsed; [] when the file does not exist.

    A damaged last row (a crash in the middle of an in-place append by an earlier version)
    is dropped, so the pair it belongs to is redone; a damaged row anywhere else raises
    ``ValueError`` naming the file and the line.
    """
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        raw = list(csv.DictReader(f))
    rows = []
    for i, r in enumerate(raw):
        try:
            if r.get(None) or not r.get("strategy"):
                raise ValueError("wrong number of fields")
            rows.append(_typed(r))
        except (TypeError, ValueError) as exc:
            if i == len(raw) - 1:
                break  # torn last row: its pair is unfinished and will be redone
            raise ValueError(f"{path}: line {i + 2} is damaged ({exc}): remove that line or the file") from None
    return rows


def _format(row):
    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        return v

    return {k: cell(row.get(k, math.nan)) for k in COLUMNS}


def write_curves(path, rows):
    """Write every row to a temporary file and rename it onto ``path``: a crash leaves the old file or the new one."""
    with atomic_path(path, ".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            for row in rows:
                w.writerow(_format(row))


def append_curve(path, row):
    """Add one row: the whole file is rewritten atomically (a few thousand rows: milliseconds),
    so a kill never leaves a torn row, and an older file gains the newer columns."""
    write_curves(path, read_curves(path) + [row])


def finished_pairs(rows, rounds):
    """(strategy, seed) pairs with every round 0..rounds present."""
    seen = {}
    for r in rows:
        seen.setdefault((r["strategy"], r["seed"]), set()).add(r["round"])
    return {pair for pair, got in seen.items() if got >= set(range(rounds + 1))}


def check_run_args(out, run_args, key_defaults=None):
    """Refuse ``out`` when its ``run.json`` (or a ``curves.csv`` without one) says other arguments; writes nothing.

    Parameters
    ----------
    out : Path
    run_args : dict
        The arguments that change the numbers.
    key_defaults : dict, optional
        Values that keys added after an earlier run was made compare equal to.
    """
    key_defaults = key_defaults or {}
    curves, meta = out / "curves.csv", out / "run.json"
    if not meta.exists():
        if curves.exists():
            raise ValueError(f"{curves} exists without run.json: pass another --out or remove it")
        return
    old = load_json(meta)
    diff = [f"{k}: {old.get(k, key_defaults.get(k))!r} then, {v!r} now" for k, v in run_args.items()
            if old.get(k, key_defaults.get(k)) != v]
    if diff:
        raise ValueError(f"{out} was made with different arguments ({'; '.join(diff)}): "
                         f"pass another --out, or the same arguments to resume")


def prepare_resume(out, run_args, key_defaults=None):
    """Check ``run.json`` against ``run_args`` (:func:`check_run_args`), write it, drop partial pairs.

    ``run.json`` is written before any row, so a folder whose run was killed before its
    first row still refuses other arguments (whose saved initial weights would not fit).

    Returns
    -------
    done : set of (strategy, seed)
        Pairs already finished.
    """
    check_run_args(out, run_args, key_defaults)
    out.mkdir(parents=True, exist_ok=True)
    meta = out / "run.json"
    if meta.exists():
        run_args = dict(load_json(meta), **run_args)  # keep keys of an older version as they were
    save_json(meta, run_args)
    curves = out / "curves.csv"
    rows = read_curves(curves)
    done = finished_pairs(rows, run_args["rounds"])
    kept = [r for r in rows if (r["strategy"], r["seed"]) in done and r["round"] <= run_args["rounds"]]
    if curves.exists() and (len(kept) != len(rows) or len(rows) == 0):
        write_curves(curves, kept)
    return done


# --------------------------------------------------------------------------- statistics
def area_under_curve(n_labeled, values):
    """Trapezoid area under values vs labels, divided by the label range (a mean accuracy)."""
    n = np.asarray(n_labeled, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(n) < 2 or n[-1] == n[0]:
        return float(v.mean())
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(n)) / (n[-1] - n[0]))


def bootstrap_ci(values, *, resamples=BOOTSTRAP_RESAMPLES, level=BOOTSTRAP_LEVEL, random_state=BOOTSTRAP_SEED):
    """Percentile bootstrap interval of the mean of ``values`` (one per seed).

    Returns
    -------
    (low, high) : tuple of float; (nan, nan) for no values
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    idx = np.random.RandomState(random_state).randint(0, v.size, size=(resamples, v.size))
    means = v[idx].mean(axis=1)
    tail = (1.0 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


# Fewer seeds than this give no verdict: a bootstrap over 1-2 values says nothing.
MIN_SEEDS_FOR_VERDICT = 3


def verdict(low, high, n_seeds):
    """'better' when the interval of the AULC difference lies above 0, 'worse' below, else 'no better'."""
    if n_seeds < MIN_SEEDS_FOR_VERDICT:
        return f"undecided ({n_seeds} seeds)"
    return "better" if low > 0 else "worse" if high < 0 else "no better"


def curve_drops(mean_curve, tolerance=DROP_TOLERANCE):
    """How the mean curve falls between consecutive rounds: count of drops, count above ``tolerance``, largest."""
    d = -np.diff(np.asarray(mean_curve, dtype=np.float64))
    drops = d[d > 0]
    return {"drops": int(drops.size), "drops_over_tolerance": int((drops > tolerance).sum()),
            "max_drop": float(drops.max()) if drops.size else 0.0}


def stop_rounds(pair_rows):
    """The first round at which each stopping criterion fires for one (strategy, seed) curve (None: never).

    Stabilizing predictions: ``stop_kappa >= SP_KAPPA`` in ``SP_WINDOW`` consecutive rounds;
    overall-uncertainty: ``pool_mean_entropy < OU_THRESHOLD``; max-confidence:
    ``selected_max_entropy < MC_THRESHOLD``.
    """
    kappa = [r.get("stop_kappa", math.nan) for r in pair_rows]
    out = {"stabilizing_predictions": None, "overall_uncertainty": None, "max_confidence": None}
    for i, r in enumerate(pair_rows):
        window = kappa[max(0, i - SP_WINDOW + 1): i + 1]
        if out["stabilizing_predictions"] is None and len(window) == SP_WINDOW and all(k >= SP_KAPPA for k in window):
            out["stabilizing_predictions"] = r["round"]
        if out["overall_uncertainty"] is None and r.get("pool_mean_entropy", math.nan) < OU_THRESHOLD:
            out["overall_uncertainty"] = r["round"]
        if out["max_confidence"] is None and r.get("selected_max_entropy", math.nan) < MC_THRESHOLD:
            out["max_confidence"] = r["round"]
    return out  # NaN compares False: rows without the columns never fire


def curves_by_pair(rows):
    """(strategy, seed) -> that pair's rows in round order."""
    pairs = {}
    for r in sorted(rows, key=lambda r: (r["strategy"], r["seed"], r["round"])):
        pairs.setdefault((r["strategy"], r["seed"]), []).append(r)
    return pairs


def _stopping(curves):
    """Per criterion: the labels at which it fired in each seed, and the accuracy then."""
    out = {}
    stops = {seed: stop_rounds(rs) for seed, rs in curves.items()}
    for name in ("stabilizing_predictions", "overall_uncertainty", "max_confidence"):
        fired = {}
        for seed, rs in curves.items():
            r = stops[seed][name]
            if r is not None:
                fired[str(seed)] = {"round": r, "n_labeled": rs[r]["n_labeled"], "accuracy": rs[r]["accuracy"],
                                    "final_accuracy": rs[-1]["accuracy"]}
        labels = [f["n_labeled"] for f in fired.values()]
        out[name] = {"fired_seeds": len(fired), "seeds": len(curves), "per_seed": fired,
                     "median_labels": float(np.median(labels)) if labels else None}
    return out


# --------------------------------------------------------------------------- summary
def summarize(rows, strategies, seeds, rounds):
    """Per strategy: AULC, its paired difference to random (bootstrap interval, verdict), noise and stopping.

    Returns
    -------
    dict of strategy -> dict
        ``auc_mean``/``auc_std``/``auc_per_seed`` (AULC: area under test accuracy vs
        labels / label range), ``mean_accuracy`` per round, ``noise`` (:func:`curve_drops`
        of the mean curve), ``stopping`` (per criterion: seeds where it fired and at how
        many labels), and against ``random`` (when run): ``auc_minus_random`` (mean of the
        per-seed differences), ``auc_minus_random_ci``, ``verdict``, ``seeds_beating_random``,
        ``labels_to_reach_random_final``; against ``modal_entropy``: ``auc_minus_modal_entropy``.
    """
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
            "noise": curve_drops(acc.mean(axis=0)),
            "stopping": _stopping({s: pairs[(name, s)] for s in got}),
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
                low, high = bootstrap_ci(deltas)
                s["auc_minus_random_ci"] = [low, high]
                s["verdict"] = "baseline" if name == "random" else verdict(low, high, len(deltas))
                s["seeds_beating_random"] = int(sum(d > 0 for d in deltas))
                s["seeds_compared"] = len(common)
                target = base["mean_accuracy"][-1]
                reached = [nl for nl, a in zip(s["n_labeled"], s["mean_accuracy"]) if a >= target]
                s["random_final_accuracy"] = target
                s["labels_to_reach_random_final"] = int(reached[0]) if reached else None
                s["fraction_of_random_labels"] = (round(reached[0] / base["n_labeled"][-1], 3) if reached else None)
    return out


def _stop_cell(stop):
    parts = []
    for key, short in (("stabilizing_predictions", "SP"), ("overall_uncertainty", "OU"), ("max_confidence", "MC")):
        c = stop[key]
        at = "—" if c["median_labels"] is None else f"{c['median_labels']:.0f}"
        parts.append(f"{short} {at} ({c['fired_seeds']}/{c['seeds']})")
    return ", ".join(parts)


def summary_table(summary):
    """The summary as a Markdown table, one row per strategy."""
    head = ("| strategy | AULC mean ± std | Δ AULC vs random [95% CI] | verdict | final acc | seeds > random | "
            "labels to reach random's final | mean-curve drops > 0.01 (largest) | stops at labels: median "
            "(seeds fired) | select s/round |")
    lines = [head, "|" + "---|" * 10]
    for name, s in summary.items():
        reach = s.get("labels_to_reach_random_final")
        reach_txt = "—" if "labels_to_reach_random_final" not in s else (
            "not reached" if reach is None else f"{reach} ({s['fraction_of_random_labels']:.0%})")
        delta = s.get("auc_minus_random")
        ci = s.get("auc_minus_random_ci")
        delta_txt = "—" if delta is None or name == "random" else f"{delta:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]"
        noise = s["noise"]
        lines.append(
            f"| {name} | {s['auc_mean']:.4f} ± {s['auc_std']:.4f} | {delta_txt} | {s.get('verdict', '—')} | "
            f"{s['final_accuracy_mean']:.4f} | {s.get('seeds_beating_random', '—')}/{s.get('seeds_compared', '—')} | "
            f"{reach_txt} | {noise['drops_over_tolerance']} ({noise['max_drop']:.4f}) | {_stop_cell(s['stopping'])} | "
            f"{s['select_seconds_per_round']:.2f} |")
    return "\n".join(lines)


def _recipe_text(run_args):
    steps = f"{run_args['steps']} steps per fit"
    if run_args.get("epochs_per_fit"):
        steps = (f"max({run_args['steps']}, {run_args['epochs_per_fit']:g} epochs of the labeled set) steps per fit, "
                 f"rounded up to a multiple of {run_args['steps']}")
    fitted = {"logreg": "logistic regression fitted to convergence",
              "spread": "label spreading over the pool's nearest-neighbour graph",
              "blend": "label spreading averaged with a logistic regression"}
    if run_args.get("model") in fitted:
        return fitted[run_args["model"]]
    lr = "each learner's own" if run_args["lr"] is None else f"{run_args['lr']:g}"  # --model auto
    return f"{steps}, {run_args.get('schedule', 'constant')} learning rate {lr}"


def write_outputs(out, rows, strategies, seeds, run_args, wall_seconds):
    """``learning_curves.png``, ``summary.json`` and ``summary.txt`` from the finished pairs; returns the summary."""
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
    noise = summary.get("random", {}).get("noise")
    noise_txt = ("" if noise is None else
                 f"Noise: random's mean curve drops {noise['drops']} times between consecutive rounds, "
                 f"{noise['drops_over_tolerance']} by more than {DROP_TOLERANCE} (largest {noise['max_drop']:.4f}).\n")
    text = (f"Label-efficiency benchmark: {run_args['dataset']}, model {run_args['model']}, "
            f"{run_args['initial']} initial labels + {run_args['rounds']} rounds x {run_args['budget']}, "
            f"seeds {list(seeds)}; {_recipe_text(run_args)}\n"
            f"AULC = area under test accuracy vs labels / label range. Δ = mean over seeds of the paired "
            f"difference, {BOOTSTRAP_LEVEL:.0%} bootstrap interval over seeds; verdict 'better' when the interval "
            f"lies above 0, 'worse' below. Stops: SP = stabilizing predictions (kappa >= {SP_KAPPA} "
            f"{SP_WINDOW} rounds running), OU = overall-uncertainty (pool mean entropy < {OU_THRESHOLD}), "
            f"MC = max-confidence (selected max entropy < {MC_THRESHOLD}).\n{noise_txt}"
            f"Wall time of this invocation: {wall_seconds:.0f} s\n\n" + summary_table(summary) + "\n")
    save_text(out / "summary.txt", text)
    return summary
