"""Label-efficiency benchmark: a tiny end-to-end run, resume (the script as a subprocess), the oracle's
contract and the summary's arithmetic."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labelnext import strategies as st
from labelnext.benchmark import simulate as le
from labelnext.benchmark import curves
from labelnext.benchmark.curves import COLUMNS, area_under_curve, summarize
from labelnext.strategies import auto
from labelnext.utils.console import run_cli

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "Evaluation" / "Benchmark" / "benchmark.py"
# bald: MC-dropout passes drawn from each round's trained head and its Dropout rate, end to end.
# One round of 20 (a fit per pair after the seed's round 0): several rounds in a row are
# test_simulation_never_uses_unrevealed_labels' (3) and test_round's (2, real training).
TINY = ["--dataset", "digits", "--strategies", "random,bald", "--seeds", "2", "--rounds", "1", "--initial", "20",
        "--budget", "20", "--pool-size", "200", "--test-size", "100", "--steps", "20", "--epochs-per-fit", "20",
        "--quiet"]


def run(args, out):
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def keys(rows):
    return [(r["strategy"], r["seed"], r["round"]) for r in rows]


def test_tiny_run_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "bench"
    # The first run and the finished resume in this process (run_cli(main), what the script calls: a
    # process paid TensorFlow's import); the redone pair and the refusal run the script as a process.
    assert run_cli(le.main, TINY + ["--out", str(out)]) == 0, capsys.readouterr().err[-2000:]
    rows = read_rows(out / "curves.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == 2 * 2 * 2  # strategies x seeds x (round 0 + 1 round)
    assert sorted(keys(rows)) == sorted({(s, str(seed), str(r)) for s in ("random", "bald")
                                         for seed in (0, 1) for r in (0, 1)})
    assert {r["n_labeled"] for r in rows} == {"20", "40"}
    # The step budget grows with the labeled set: 20 epochs of 20 labels at batch 32 = 20 steps, kept;
    # 20 epochs of 40 labels = 40 steps -> 2 x 20.
    assert {(r["n_labeled"], r["steps"]) for r in rows} == {("20", "20"), ("40", "40")}
    assert all(r["stop_kappa"] == "" for r in rows if r["round"] == "0")
    assert all(-1 <= float(r["stop_kappa"]) <= 1 for r in rows if r["round"] != "0")
    assert json.loads((out / "run.json").read_text())["schedule"] == "cosine"
    # Round 0 is shared: the same model for every strategy within a seed.
    r0 = {(r["seed"], r["accuracy"]) for r in rows if r["round"] == "0"}
    assert len(r0) == 2
    summary = json.loads((out / "summary.json").read_text())
    for name in ("random", "bald"):
        s = summary["strategies"][name]
        for key in ("auc_mean", "auc_std", "final_accuracy_mean", "seeds_beating_random",
                    "labels_to_reach_random_final", "auc_minus_random", "auc_minus_random_ci", "verdict", "noise",
                    "stopping"):
            assert key in s
    assert (out / "learning_curves.png").stat().st_size > 0
    assert "| random |" in (out / "summary.txt").read_text()

    # Same arguments again: everything is finished, nothing is added.
    assert run_cli(le.main, TINY + ["--out", str(out)]) == 0, capsys.readouterr().err[-2000:]
    assert keys(read_rows(out / "curves.csv")) == keys(rows)

    # An interrupted pair (last round missing) is dropped and redone, without duplicates.
    lines = (out / "curves.csv").read_text().splitlines(keepends=True)
    (out / "curves.csv").write_text("".join(lines[:-1]))
    res = run(TINY, out)
    assert res.returncode == 0, res.stderr[-2000:]
    again = read_rows(out / "curves.csv")
    assert len(again) == len(rows) and len(set(keys(again))) == len(again)
    # Training is controlled: the redone pair, run alone in a new process, gives the same curve as the
    # first run in this one (after every test before it).
    acc = lambda rs: {(r["strategy"], r["seed"], r["round"]): r["accuracy"] for r in rs}  # noqa: E731
    assert acc(again) == acc(rows)

    # Resuming with different arguments is refused in one line.
    res = run([*TINY[:-1], "--budget", "5", "--quiet"], out)
    assert res.returncode == 2
    assert "different arguments" in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, match", [
    (["--strategies", "random,bogus"], "strategy must be one of"),
    (["--rounds", "0"], "rounds must be"),
    (["--budget", "2000"], "more than the pool"),
    (["--lr", "inf"], "lr must be a number in"),
    (["--lr", "nan"], "lr must be a number in"),
    (["--budget", "5", "--budget-ratio", "0.1"], "not both"),
    (["--budget-ratio", "1.5"], "budget_ratio must be a number in"),
    (["--epochs-per-fit", "-1"], "epochs_per_fit must be a number in"),
    (["--model", "mlp"], "model must be one of"),
    (["--features", "patches", "--model", "small_cnn"], r"model must be one of \['linear', 'mlp', 'logreg', 'spread', 'blend', 'auto'\], got 'small_cnn'"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, args, match):
    # In-process: the end-to-end test checks that the script turns a ValueError into one line and exit 2.
    with pytest.raises(ValueError, match=match):
        le.main(args + ["--quiet", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()


class FakeTrainer:
    """Records every (x, y) it is trained on; predicts with a nearest-class-mean model."""

    def __init__(self, n_classes):
        self.n_classes = n_classes
        self.fits = []
        self.oracle = None  # set to snapshot what was revealed at each fit

    def fit(self, x, y, random_state=0, *, start_weights=None):
        revealed = None if self.oracle is None else self.oracle.revealed_.copy()
        self.fits.append((np.asarray(x).copy(), np.asarray(y).copy(), revealed))
        flat = x.reshape(len(x), -1).astype(np.float64)
        self.means = np.stack([flat[y == c].mean(axis=0) if (y == c).any() else np.zeros(flat.shape[1])
                               for c in range(self.n_classes)])
        self.info_ = {"train_seconds": 0.0}
        return self

    def predict(self, x, batch_size=None):
        flat = x.reshape(len(x), -1).astype(np.float64)
        d = ((flat[:, None, :] - self.means[None]) ** 2).sum(axis=2)
        z = -d / d.std()
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return p.astype(np.float32), flat[:, :6].astype(np.float32)

    def head(self):
        return np.zeros((6, self.n_classes)), np.zeros(self.n_classes)

    def dropout_rate(self):
        return 0.5

    def get_weights(self):
        return None


def _initial_labels(y, initial):
    labels = np.full(len(y), -1)
    labels[initial] = y[initial]
    return labels


def test_oracle_reveals_only_what_is_queried():
    oracle = le.Oracle(np.array([3, 1, 2, 0, 1]))
    assert (oracle.known_labels() == -1).all()
    np.testing.assert_array_equal(oracle.query([1, 3]), [1, 0])
    np.testing.assert_array_equal(oracle.known_labels(), [-1, 1, -1, 0, -1])
    with pytest.raises(RuntimeError, match="never revealed"):
        oracle.labels_of([0])


@pytest.mark.parametrize("strategy", ["random", "entropy", "intersection", "bald"])
def test_simulation_never_uses_unrevealed_labels(strategy, monkeypatch):
    rng = np.random.RandomState(0)
    n, c = 120, 3
    y = rng.randint(0, c, n)
    x = (rng.randn(n, 4, 4, 3) + y[:, None, None, None]).astype(np.float32)
    oracle = le.Oracle(y)
    initial = le.initial_rows(y, 12, 0)
    trainer = FakeTrainer(c)
    seen_labels = []
    real_select = st.select

    def spy(name, ctx, budget, random_state=None):
        # Strategies see revealed labels only: -1 on every pool row.
        assert (ctx.labels[~ctx.labeled_mask] == -1).all()
        assert (ctx.labels[ctx.labeled_mask] == y[ctx.labeled_mask]).all()
        seen_labels.append(ctx.labels.copy())
        return real_select(name, ctx, budget, random_state)

    monkeypatch.setattr(st, "select", spy)
    round0 = le.train_round0(trainer, 0, x, _initial_labels(y, initial), x[:20], y[:20])
    trainer.oracle = oracle
    rows = le.run_pair(strategy, 0, x_pool=x, oracle=oracle, initial=initial, x_test=x[:20], y_test=y[:20],
                       trainer=trainer, round0=round0, budget=8, rounds=3)
    assert [r["n_labeled"] for r in rows] == [12, 20, 28, 36]
    revealed = np.concatenate(oracle.log_)
    assert len(revealed) == len(np.unique(revealed)) == 36  # each label asked for once
    assert oracle.revealed_.sum() == 36
    # Every training set is exactly the rows revealed by then, with their true labels.
    for xt, yt, revealed in trainer.fits[1:]:
        np.testing.assert_array_equal(xt, x[revealed])
        np.testing.assert_array_equal(yt, y[revealed])
    assert [len(yt) for _, yt, _ in trainer.fits[1:]] == [20, 28, 36]
    assert len(seen_labels) == 3


def test_the_simulated_loop_decides_auto_once_per_round(monkeypatch):
    calls = []
    real = auto.auto_choice
    monkeypatch.setattr(auto, "auto_choice", lambda ctx, budget: calls.append(int(ctx.labeled_mask.sum()))
                        or real(ctx, budget))
    rng = np.random.RandomState(0)
    n, c = 120, 3
    y = rng.randint(0, c, n)
    x = (rng.randn(n, 4, 4, 3) + y[:, None, None, None]).astype(np.float32)
    initial = le.initial_rows(y, 12, 0)
    trainer = FakeTrainer(c)
    round0 = le.train_round0(trainer, 0, x, _initial_labels(y, initial), x[:20], y[:20])
    rows = le.run_pair("auto", 0, x_pool=x, oracle=le.Oracle(y), initial=initial, x_test=x[:20], y_test=y[:20],
                       trainer=trainer, round0=round0, budget=8, rounds=3)
    assert [r["n_labeled"] for r in rows] == [12, 20, 28, 36]
    assert calls == [12, 20, 28]  # one decision per selecting round, none in the last


def test_tiny_run_with_patch_features(tmp_path):
    out = tmp_path / "bench"
    args = ["--dataset", "digits", "--strategies", "typiclust", "--seeds", "1", "--rounds", "1", "--initial", "20",
            "--budget", "10", "--pool-size", "120", "--test-size", "50", "--steps", "10", "--quiet",
            "--features", "patches"]
    # In-process, as the bad-input tests: the end-to-end test runs the script as a process.
    le.main(args + ["--out", str(out)])
    rows = read_rows(out / "curves.csv")
    assert [(r["strategy"], r["round"], r["n_labeled"]) for r in rows] == [("typiclust", "0", "20"),
                                                                           ("typiclust", "1", "30")]
    # A linear model on 8 x 8 digits' patch features learns something from 20 labels (chance: 0.1).
    assert float(rows[0]["accuracy"]) > 0.3
    saved = json.loads((out / "run.json").read_text())
    # auto's switch point for the linear model, recorded as the value used.
    assert (saved["features"], saved["model"], saved["auto_switch"]) == ("patches", "linear", 20.0)
    # The same folder on the raw images is another experiment: refused.
    with pytest.raises(ValueError, match="features: 'patches' then, 'raw' now"):
        le.main(args[:-2] + ["--out", str(out)])


def test_patch_features_need_images(tmp_path):
    table = tmp_path / "t.csv"
    rng = np.random.RandomState(0)
    rows = ["a,b,label"] + [f"{rng.rand():.3f},{rng.rand():.3f},{i % 2}" for i in range(60)]
    table.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match="features 'patches' needs images, got tabular data"):
        le.main(["--dataset", str(table), "--features", "patches", "--quiet", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()


def test_summary_compares_each_seed_with_random():
    def rows(name, seed, accs):
        return [{"strategy": name, "seed": seed, "round": r, "n_labeled": 10 + 10 * r, "accuracy": a, "macro_f1": a,
                 "select_seconds": 0.0, "train_seconds": 0.0} for r, a in enumerate(accs)]

    # Trapezoids over 10 -> 30 labels: ((0.5 + 0.7) / 2 * 10 + (0.7 + 0.9) / 2 * 10) / 20 = 0.7.
    assert area_under_curve([10, 20, 30], [0.5, 0.7, 0.9]) == pytest.approx(0.7)
    data = (rows("random", 0, [0.5, 0.6, 0.7]) + rows("random", 1, [0.5, 0.7, 0.8])
            + rows("entropy", 0, [0.5, 0.7, 0.8]) + rows("entropy", 1, [0.5, 0.6, 0.7]))
    summary = summarize(data, ["random", "entropy"], [0, 1], rounds=2)
    ent = summary["entropy"]
    assert ent["auc_per_seed"]["0"] == pytest.approx(0.675) and ent["auc_per_seed"]["1"] == pytest.approx(0.6)
    assert ent["auc_minus_random"] == pytest.approx(0.0)
    assert (ent["seeds_beating_random"], ent["seeds_compared"]) == (1, 2)
    # Both mean curves end at 0.75: entropy reaches random's final accuracy only at 30 labels.
    assert ent["labels_to_reach_random_final"] == 30 and ent["fraction_of_random_labels"] == 1.0


# --------------------------------------------------------------------------- curves.csv and run.json
def curve_row(name="random", seed=0, rnd=0, acc=0.5, **extra):
    return dict({"strategy": name, "seed": seed, "round": rnd, "n_labeled": 10 + 10 * rnd, "accuracy": acc,
                 "macro_f1": acc, "select_seconds": 0.0, "train_seconds": 1.0}, **extra)


def test_append_rewrites_atomically_and_a_torn_last_row_is_dropped(tmp_path):
    path = tmp_path / "curves.csv"
    for r in range(3):
        curves.append_curve(path, curve_row(rnd=r, acc=0.5 + r / 10, stop_kappa=0.9))
    assert [r["accuracy"] for r in curves.read_curves(path)] == [0.5, 0.6, 0.7]
    assert not list(tmp_path.glob(".tmp-*"))
    # An in-place append killed mid-row (earlier versions): 'could not convert string to float' before.
    text = path.read_text()
    path.write_text(text + "random,0,3,40,0.8")
    assert [r["round"] for r in curves.read_curves(path)] == [0, 1, 2]
    curves.append_curve(path, curve_row(rnd=3, acc=0.8))
    assert path.read_text().count("\n") == 5 and [r["round"] for r in curves.read_curves(path)] == [0, 1, 2, 3]
    # A damaged row that is not the last is no crash artefact: refused, naming the line.
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "random,0,x\n" + "".join(lines[1:]))
    with pytest.raises(ValueError, match="line 2 is damaged"):
        curves.read_curves(path)


def test_an_older_curves_file_reads_and_gains_the_new_columns(tmp_path):
    path = tmp_path / "curves.csv"
    path.write_text("strategy,seed,round,n_labeled,accuracy,macro_f1,select_seconds,train_seconds\n"
                    "random,0,0,10,0.5,0.5,0,1\n")
    (old,) = curves.read_curves(path)
    assert old["accuracy"] == 0.5 and np.isnan(old["stop_kappa"])
    curves.append_curve(path, curve_row(rnd=1, stop_kappa=0.25))
    assert read_rows(path)[0]["stop_kappa"] == "" and read_rows(path)[1]["stop_kappa"] == "0.25"


def test_a_folder_killed_before_its_first_row_refuses_other_arguments(tmp_path):
    out = tmp_path / "bench"
    args = {"dataset": "digits", "rounds": 2, "budget": 10, "lr": 0.001, "schedule": "cosine"}
    assert curves.prepare_resume(out, args) == set()
    assert not (out / "curves.csv").exists() and (out / "run.json").exists()
    with pytest.raises(ValueError, match="different arguments .*budget: 10 then, 5 now"):
        curves.check_run_args(out, dict(args, budget=5))
    curves.check_run_args(out, args)  # the same ones resume
    # A folder of an older version (no 'schedule' key) made its curves with a constant rate.
    (out / "run.json").write_text(json.dumps({"dataset": "digits", "rounds": 2, "budget": 10, "lr": 0.001}))
    with pytest.raises(ValueError, match="schedule: 'constant' then, 'cosine' now"):
        curves.check_run_args(out, args, le.KEY_DEFAULTS)
    curves.check_run_args(out, dict(args, schedule="constant"), le.KEY_DEFAULTS)


# --------------------------------------------------------------------------- statistics
def test_bootstrap_interval_and_verdict():
    low, high = curves.bootstrap_ci([0.01, 0.02, 0.03])
    assert 0.01 <= low < 0.02 < high <= 0.03
    assert curves.verdict(low, high, 3) == "better"
    assert curves.verdict(*curves.bootstrap_ci([-0.02, 0.01, 0.0, 0.01, -0.01]), 5) == "no better"
    assert curves.verdict(*curves.bootstrap_ci([-0.02, -0.01, -0.03]), 3) == "worse"
    assert curves.verdict(0.01, 0.02, 2) == "undecided (2 seeds)"
    # Every resample of one repeated value is that value.
    assert curves.bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_curve_drops_counts_the_falls_of_the_mean_curve():
    got = curves.curve_drops([0.5, 0.6, 0.595, 0.7, 0.68, 0.69])
    assert got["drops"] == 2 and got["drops_over_tolerance"] == 1 and got["max_drop"] == pytest.approx(0.02)
    assert curves.curve_drops([0.1, 0.2, 0.3]) == {"drops": 0, "drops_over_tolerance": 0, "max_drop": 0.0}


def test_stop_rounds_fire_where_the_thresholds_are_crossed():
    kappas = [np.nan, 0.8, 0.99, 0.995, 0.97, 0.99, 0.99, 1.0]
    mean_h = [0.5, 0.3, 0.2, 0.12, 0.09, 0.08, 0.05, 0.04]
    max_h = [np.nan, 0.9, 0.5, 0.2, 0.11, 0.05, 0.3, 0.02]
    rs = [curve_row(rnd=i, stop_kappa=k, pool_mean_entropy=m, selected_max_entropy=x)
          for i, (k, m, x) in enumerate(zip(kappas, mean_h, max_h))]
    # Kappa >= 0.99 three rounds running first at rounds 5, 6, 7 (round 4 broke the first run).
    assert curves.stop_rounds(rs) == {"stabilizing_predictions": 7, "overall_uncertainty": 4, "max_confidence": 5}
    assert curves.stop_rounds(rs[:4]) == {"stabilizing_predictions": None, "overall_uncertainty": None,
                                          "max_confidence": None}


def test_summary_gives_interval_verdict_and_noise():
    def rows(name, seed, accs):
        return [curve_row(name, seed, r, a) for r, a in enumerate(accs)]

    data = []
    for seed in range(3):
        data += rows("random", seed, [0.5, 0.6, 0.58])
        data += rows("margin", seed, [0.5, 0.7 + seed / 100, 0.8])
    summary = summarize(data, ["random", "margin"], [0, 1, 2], rounds=2)
    assert summary["random"]["noise"] == {"drops": 1, "drops_over_tolerance": 1, "max_drop": pytest.approx(0.02)}
    assert summary["random"]["verdict"] == "baseline" and summary["margin"]["verdict"] == "better"
    low, high = summary["margin"]["auc_minus_random_ci"]
    assert 0 < low <= summary["margin"]["auc_minus_random"] <= high
    table = curves.summary_table(summary)
    assert "| margin |" in table and "| better |" in table


def test_the_benchmark_leaves_out_the_columns_it_is_told_to(tmp_path, capsys):
    rows = ["row_id,x1,x2,label"] + [f"{1000 + i},{(i * 7) % 11},{(i * 5) % 13},{'abc'[i * 3 // 60]}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    x = le.load_data(str(tmp_path / "t.csv"), 32)[0]
    assert x.shape[1] == 3 and "warning: column 'row_id'" in capsys.readouterr().err
    assert le.load_data(str(tmp_path / "t.csv"), 32, drop_columns="row_id")[0].shape[1] == 2
    assert {"drop_columns", "keep_columns"} <= set(le.RUN_KEYS)


def test_the_recipe_line_names_each_learner():
    from labelnext.benchmark.curves import _recipe_text

    base = {"steps": 400, "epochs_per_fit": 0.0, "schedule": "cosine"}
    assert _recipe_text(dict(base, model="mlp", lr=0.01)).endswith("cosine learning rate 0.01")
    assert _recipe_text(dict(base, model="auto", lr=None)).endswith("learning rate each learner's own")
    assert _recipe_text(dict(base, model="logreg", lr=0.001)) == "logistic regression fitted to convergence"
