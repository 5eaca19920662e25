"""al init --embeddings FILE: the user's own embeddings as the features, checked before anything is written."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from helpers import COLOURS, photos
from labelnext.cli import main
from labelnext.data import load_dataset
from labelnext.features.embeddings import EMBEDDINGS_FILE
from labelnext.utils.console import run_cli


def _al(capsys, *args):
    code = run_cli(main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _vectors(paths, dim=6, seed=0):
    """An embedding per image file: its class colour plus noise, so a linear model can learn it."""
    rng = np.random.default_rng(seed)
    centre = {name: rng.normal(0, 1, dim) * 3 for name in COLOURS}
    return np.stack([centre[p.split("/")[-2]] + rng.normal(0, 1, dim) for p in paths]).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    """30 photos (no test split), their embeddings in load_dataset's order, and the same rows keyed by path."""
    photos(tmp_path / "photos", per_class=10)
    paths = load_dataset(tmp_path / "photos", image_size=16, holdout=False).train_paths
    x = _vectors(paths)
    np.save(tmp_path / "emb.npy", x)
    rel = [str(p).split("photos/")[1] for p in paths]
    order = np.random.default_rng(1).permutation(len(paths))
    pd.DataFrame({"path": [rel[i] for i in order], "vector": [x[i].tolist() for i in order]}).to_parquet(
        tmp_path / "emb.parquet")
    return tmp_path, rel, x


def _init(capsys, root, file, *more):
    return _al(capsys, "init", root / "photos", "--project", root / "proj", "--initial", 6, "--image-size", 16,
               "--steps", 20, "--embeddings", file, *more)


def test_npy_and_shuffled_keyed_parquet_give_the_same_rounds(folder, capsys, tmp_path):
    results = []
    for name in ("emb.npy", "emb.parquet"):
        code, out, err = _init(capsys, tmp_path, tmp_path / name)
        assert code == 0, err
        config = json.loads((tmp_path / "proj" / "project.json").read_text())
        assert (config["features"], config["arch"], config["embeddings"]["dim"]) == ("embeddings", "logreg", 6)
        assert config["embeddings"]["source"] == str((tmp_path / name).resolve())
        with np.load(tmp_path / "proj" / EMBEDDINGS_FILE) as kept:
            assert kept["pool"].shape == (24, 6) and kept["test"].shape == (6, 6)  # 20% held out, rows follow
            arrays = (kept["pool"], kept["test"])
        code, out, err = _al(capsys, "round", "--project", tmp_path / "proj", "--budget", 4)
        assert code == 0, err
        record = json.loads((tmp_path / "proj" / "round-000" / "round.json").read_text())
        assert record["features"] == "embeddings" and record["metrics"]["n_eval"] == 6
        selection = (tmp_path / "proj" / "round-000" / "selection.csv").read_text()
        results.append((arrays, record["metrics"]["accuracy"], selection))
        shutil.rmtree(tmp_path / "proj")
    (a_arrays, a_acc, a_sel), (b_arrays, b_acc, b_sel) = results
    for a, b in zip(a_arrays, b_arrays):
        np.testing.assert_array_equal(a, b)
    assert a_acc == b_acc and a_sel == b_sel


def _parquet(path, keys, x):
    pd.DataFrame({"path": keys, **{f"e{j}": x[:, j] for j in range(x.shape[1])}}).to_parquet(path)
    return path


def _bad_files(root, rel, x):
    nan = x.copy()
    nan[3, 2] = np.nan
    np.save(root / "nan.npy", nan)
    np.save(root / "short.npy", x[:-1])
    np.save(root / "text.npy", np.array([["a"] * 6] * len(x)))
    pd.DataFrame({"path": rel, "e0": x[:, 0], "label": ["a"] * len(x)}).to_parquet(root / "strings.parquet")
    return {
        "short.npy": "has 29 rows but photos has 30 items",
        "nan.npy": "1 rows hold NaN or infinite values (or beyond float32), first row 3",
        "text.npy": "must hold numbers (int or float), got dtype <U1",
        "strings.parquet": "column 'label' is not numeric",
        "unknown.parquet": "row 29: path 'red/999.png' is not an item of photos",
        "missing.parquet": "has no row for 1 of the 30 items of photos",
        "twice.parquet": "both name",
        "ambiguous.parquet": "matches 3 items",
        "values.csv": "must be a .npy or .parquet file",
    }, {
        "unknown.parquet": _parquet(root / "unknown.parquet", rel[:-1] + ["red/999.png"], x),
        "missing.parquet": _parquet(root / "missing.parquet", rel[:-1], x[:-1]),
        "twice.parquet": _parquet(root / "twice.parquet", rel[:-1] + [rel[0]], x),
        "ambiguous.parquet": _parquet(root / "ambiguous.parquet", rel[:-1] + ["000.png"], x),
    }


def test_bad_files_are_one_line_and_nothing_is_written(folder, capsys, tmp_path):
    _, rel, x = folder
    messages, _ = _bad_files(tmp_path, rel, x)
    (tmp_path / "values.csv").write_text("1,2\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, message in messages.items():
        code, out, err = _init(capsys, tmp_path, tmp_path / name)
        assert code == 2 and err.count("\n") == 1 and message in err, (name, err)
        assert not (tmp_path / "proj").exists()
    # --features and --embeddings must agree.
    code, _, err = _init(capsys, tmp_path, tmp_path / "emb.npy", "--features", "patches")
    assert code == 2 and "leave out --features patches" in err
    code, _, err = _al(capsys, "init", tmp_path / "photos", "--project", tmp_path / "proj", "--initial", 6,
                       "--features", "embeddings")
    assert code == 2 and "--features embeddings needs --embeddings FILE" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_test_split_needs_its_rows_and_a_changed_copy_is_refused(tmp_path, capsys):
    photos(tmp_path / "tree" / "train", per_class=6)
    photos(tmp_path / "tree" / "test", per_class=2, seed=1)
    ds = load_dataset(tmp_path / "tree", image_size=16, holdout=False)
    paths = ds.train_paths + ds.test_paths
    assert len(ds.test_paths) == len(ds.y_test) == 6
    x = _vectors(paths)
    np.save(tmp_path / "train_only.npy", x[:18])
    code, _, err = _al(capsys, "init", tmp_path / "tree", "--project", tmp_path / "proj", "--initial", 6,
                       "--embeddings", tmp_path / "train_only.npy")
    assert code == 2 and "18 training items and 6 test items: give 24 rows" in err
    assert not (tmp_path / "proj").exists()
    keys = [str(p).split("tree/")[1] for p in paths]  # train/red/000.png: the test split's rows too
    order = np.random.default_rng(0).permutation(len(keys))
    _parquet(tmp_path / "all.parquet", [keys[i] for i in order], x[order])
    code, out, err = _al(capsys, "init", tmp_path / "tree", "--project", tmp_path / "proj", "--initial", 6,
                         "--image-size", 16, "--embeddings", tmp_path / "all.parquet", "--arch", "mlp")
    assert code == 0 and "6 held out for testing" in out, err
    with np.load(tmp_path / "proj" / EMBEDDINGS_FILE) as kept:
        np.testing.assert_array_equal(np.concatenate([kept["pool"], kept["test"]]), x)
    assert _al(capsys, "status", "--project", tmp_path / "proj")[0] == 0
    np.savez(tmp_path / "proj" / EMBEDDINGS_FILE, pool=x[:18] + 1, test=x[18:])
    code, _, err = _al(capsys, "status", "--project", tmp_path / "proj")
    assert code == 2 and "changed since `al init`" in err


def test_tables_take_embeddings_in_row_order_and_refuse_a_path_key(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b"], 15)
    table = pd.DataFrame({"f0": rng.normal(size=30), "f1": rng.normal(size=30), "label": y})
    table.to_csv(tmp_path / "t.csv", index=False)
    x = rng.normal(size=(30, 4)) + (y == "a")[:, None] * 3
    pd.DataFrame({f"e{j}": x[:, j] for j in range(4)}).to_parquet(tmp_path / "rows.parquet")
    _parquet(tmp_path / "keyed.parquet", [f"r{i}" for i in range(30)], x)
    code, _, err = _al(capsys, "init", tmp_path / "t.csv", "--project", tmp_path / "bad", "--initial", 4,
                       "--embeddings", tmp_path / "keyed.parquet")
    assert code == 2 and "not files of their own" in err and not (tmp_path / "bad").exists()
    code, out, err = _al(capsys, "init", tmp_path / "t.csv", "--project", tmp_path / "proj", "--initial", 4,
                         "--embeddings", tmp_path / "rows.parquet")
    assert code == 0, err
    config = json.loads((tmp_path / "proj" / "project.json").read_text())
    assert (config["dataset"]["kind"], config["features"], config["arch"]) == ("tabular", "embeddings", "logreg")


def test_the_benchmark_reads_the_same_rows(folder, tmp_path):
    from labelnext.benchmark import simulate

    _, rel, x = folder
    x_all, y_all, xt_all, yt_all, n_classes, kind = simulate.load_data(tmp_path / "photos", 16,
                                                                       embeddings=tmp_path / "emb.parquet")
    assert x_all.shape == (24, 6) and xt_all.shape == (6, 6) and kind == "image"
    # Every row is the one given for its item, whichever split it landed in: its label is its file's folder.
    names = sorted(COLOURS)  # class folders are listed by name
    for rows, labels in ((x_all, y_all), (xt_all, yt_all)):
        items = [int(np.flatnonzero((x == row).all(axis=1))[0]) for row in rows]
        assert [rel[i].split("/")[0] for i in items] == [names[c] for c in labels]
    with pytest.raises(ValueError, match="leave out --features patches"):
        simulate.main(["--embeddings", str(tmp_path / "emb.npy"), "--features", "patches", "--out", str(tmp_path / "b")])
    run = ["--dataset", str(tmp_path / "photos"), "--image-size", "16", "--embeddings", str(tmp_path / "emb.npy"),
           "--initial", "6", "--budget", "2", "--rounds", "1", "--seeds", "1", "--strategies", "random", "--quiet",
           "--out", str(tmp_path / "b")]
    simulate.main(run)
    assert json.loads((tmp_path / "b" / "run.json").read_text())["embeddings_digest"]
    np.save(tmp_path / "emb.npy", x[::-1].copy())  # the same path, other rows: not this run's to resume
    with pytest.raises(ValueError, match="made with different arguments.*embeddings_digest"):
        simulate.main(run)


def test_absolute_paths_key_rows_through_a_link_too(folder, tmp_path):
    from labelnext.features.embeddings import embeddings_for

    _, rel, x = folder
    ds = load_dataset(tmp_path / "photos", image_size=16, holdout=False)
    (tmp_path / "link").symlink_to(tmp_path / "photos")
    keys = [str(tmp_path / "link" / r) if i % 2 else p for i, (r, p) in enumerate(zip(rel, ds.train_paths))]
    user = embeddings_for(_parquet(tmp_path / "abs.parquet", keys[::-1], x[::-1]), ds)
    np.testing.assert_array_equal(user.pool, x)
    assert user.test is None and user.record["dim"] == 6
