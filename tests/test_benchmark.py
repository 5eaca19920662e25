"""Label-efficiency benchmark: a tiny end-to-end run as a subprocess, resume, the oracle's contract
and the summary's arithmetic."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import strategies as st
from benchmarks import label_efficiency as le
from benchmarks.curves import COLUMNS, area_under_curve, summarize

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "Evaluation" / "Benchmark" / "benchmark.py"
TINY = ["--dataset", "digits", "--strategies", "random,entropy", "--seeds", "2", "--rounds", "2", "--initial", "20",
        "--budget", "10", "--pool-size", "200", "--test-size", "100", "--steps", "20", "--quiet"]


def run(args, out):
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def keys(rows):
    return [(r["strategy"], r["seed"], r["round"]) for r in rows]


def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "bench"
    res = run(TINY, out)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = read_rows(out / "curves.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == 2 * 2 * 3  # strategies x seeds x (round 0 + 2 rounds)
    assert sorted(keys(rows)) == sorted({(s, str(seed), str(r)) for s in ("random", "entropy")
                                         for seed in (0, 1) for r in (0, 1, 2)})
    assert {r["n_labeled"] for r in rows} == {"20", "30", "40"}
    # Round 0 is shared: the same model for every strategy within a seed.
    r0 = {(r["seed"], r["accuracy"]) for r in rows if r["round"] == "0"}
    assert len(r0) == 2
    summary = json.loads((out / "summary.json").read_text())
    for name in ("random", "entropy"):
        s = summary["strategies"][name]
        for key in ("auc_mean", "auc_std", "final_accuracy_mean", "seeds_beating_random",
                    "labels_to_reach_random_final", "auc_minus_random"):
            assert key in s
    assert (out / "learning_curves.png").stat().st_size > 0
    assert "| random |" in (out / "summary.txt").read_text()

    # Same arguments again: everything is finished, nothing is added.
    res = run(TINY, out)
    assert res.returncode == 0, res.stderr[-2000:]
    assert keys(read_rows(out / "curves.csv")) == keys(rows)

    # An interrupted pair (last round missing) is dropped and redone, without duplicates.
    lines = (out / "curves.csv").read_text().splitlines(keepends=True)
    (out / "curves.csv").write_text("".join(lines[:-1]))
    res = run(TINY, out)
    assert res.returncode == 0, res.stderr[-2000:]
    again = read_rows(out / "curves.csv")
    assert len(again) == len(rows) and len(set(keys(again))) == len(again)
    # Training is controlled: the redone pair, run alone in a new process, gives the same curve.
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

    def get_weights(self):
        return None


def test_oracle_reveals_only_what_is_queried():
    oracle = le.Oracle(np.array([3, 1, 2, 0, 1]))
    assert (oracle.known_labels() == -1).all()
    np.testing.assert_array_equal(oracle.query([1, 3]), [1, 0])
    np.testing.assert_array_equal(oracle.known_labels(), [-1, 1, -1, 0, -1])
    with pytest.raises(RuntimeError, match="never revealed"):
        oracle.labels_of([0])


@pytest.mark.parametrize("strategy", ["random", "entropy", "intersection"])
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
    round0 = le.train_round0(trainer, 0, x, le.Oracle(y).query(initial), initial, x[:20], y[:20])
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
