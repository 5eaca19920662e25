"""al init DATA --embeddings FOLDER: a pool of embedding shards, checked once by streaming, read in place,
rounds that stream (locally or on a Dask cluster), changed shards refused."""
import json
import shutil

import numpy as np
import pytest

from helpers import photos
from labelnext.cli import main
from labelnext.data import load_dataset
from labelnext.scale import shards
from labelnext.utils import checks
from labelnext.utils.console import run_cli


def _al(capsys, *args):
    code = run_cli(main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digits_rows():
    """Digits' pixels as 64-d embeddings: the 1,437 training items, then the 360 test items."""
    ds = load_dataset("digits", image_size=8, holdout=False)
    x = np.concatenate([ds.x_train, ds.x_test]).reshape(len(ds.x_train) + len(ds.x_test), -1)
    return x[:, ::3].astype(np.float32)


def _init(capsys, root, folder, *more):
    return _al(capsys, "init", "digits", "--project", root / "proj", "--initial", 40, "--image-size", 8,
               "--embeddings", folder, *more)


def _selection(project, number):
    return (project / f"round-{number:03d}" / "selection.csv").read_text()


def test_two_rounds_stream_and_the_cluster_selects_the_same_items(digits_rows, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    shards.write_shards(digits_rows, tmp_path / "emb", 500)
    code, out, err = _init(capsys, tmp_path, tmp_path / "emb")
    assert code == 0, err
    project = tmp_path / "proj"
    config = json.loads((project / "project.json").read_text())
    assert config["embeddings"]["layout"] == "shards" and config["embeddings"]["rows"] == 1797
    assert not list(project.glob("features_*"))  # read in place, never copied
    code, out, err = _al(capsys, "round", "--project", project, "--budget", 20)
    assert code == 0, err
    record = json.loads((project / "round-000" / "round.json").read_text())
    assert (record["method"], record["engine"], record["metrics"]["n_eval"]) == \
        ("intersection", {"name": "local", "workers": 1}, 360)
    assert record["metrics"]["accuracy"] > 0.5
    assert np.load(project / "round-000" / "probs.npy", mmap_mode="r").shape == (1437, 10)
    assert not list(project.glob(".predict-*"))
    code, out, err = _al(capsys, "import", "--project", project, "--oracle")
    assert code == 0 and "added 20 labels" in out
    shutil.copytree(project, tmp_path / "local")
    code, out, err = _al(capsys, "round", "--project", tmp_path / "local", "--budget", 20)
    assert code == 0, err
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp",
                                  dashboard_address=None) as cluster:
        code, out, err = _al(capsys, "round", "--project", project, "--budget", 20, "--scheduler",
                             cluster.scheduler_address)
    assert code == 0, err
    assert "on a Dask cluster, 1 workers" in out
    record = json.loads((project / "round-001" / "round.json").read_text())
    assert (record["engine"]["name"], record["engine"]["workers"], record["n_labeled"]) == ("dask", 1, 60)
    assert _selection(project, 1) == _selection(tmp_path / "local", 1)  # exact ranks: the same items
    code, out, err = _al(capsys, "import", "--project", project, "--oracle")
    assert code == 0 and "added 20 labels" in out
    # Strategies that need the pool whole, and --scheduler with one that streams locally, are one line each.
    code, out, err = _al(capsys, "round", "--project", project, "--budget", 5, "--strategy", "typiclust")
    assert code == 2 and err.count("\n") == 1 and "auto, intersection, entropy, margin" in err
    code, out, err = _al(capsys, "round", "--project", project, "--budget", 5, "--strategy", "margin", "--scheduler",
                         "tcp://127.0.0.1:1")
    assert code == 2 and "leave out --scheduler" in err
    # A shard rewritten with other values (same shape and size) is refused at the next command.
    part = np.load(tmp_path / "emb" / "part-00001.npy")
    np.save(tmp_path / "emb" / "part-00001.npy", part[::-1].copy())
    code, out, err = _al(capsys, "round", "--project", project, "--budget", 5)
    assert code == 2 and err.count("error:") == 1 and "part-00001.npy changed since `al init`" in err
    assert not (project / "round-002").exists()


def test_bad_shards_are_one_line_and_nothing_is_written(digits_rows, tmp_path, capsys):
    bad = digits_rows.copy()
    bad[1234, 5] = np.nan
    shards.write_shards(bad, tmp_path / "nan", 500)
    shards.write_shards(digits_rows[:-3], tmp_path / "short", 500)
    for folder, message in (("nan", "part-00002.npy: row 234 (row 1234 of the items) holds NaN"),
                            ("short", "its 4 shards hold 1794 rows (part-00003.npy ends at row 1793) but the data "
                                      "has 1437 training items and 360 test items")):
        code, out, err = _init(capsys, tmp_path, tmp_path / folder)
        assert code == 2 and err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "proj").exists()
    shards.write_shards(digits_rows, tmp_path / "good", 500)
    code, out, err = _init(capsys, tmp_path, tmp_path / "good", "--arch", "spread")
    assert code == 2 and "--arch spread keeps the whole pool's neighbour graph in memory" in err, err
    assert not (tmp_path / "proj").exists()
    # A pool in memory takes no --scheduler.
    np.save(tmp_path / "emb.npy", digits_rows)
    code, out, err = _init(capsys, tmp_path, tmp_path / "emb.npy")
    assert code == 0, err
    code, out, err = _al(capsys, "round", "--project", tmp_path / "proj", "--budget", 5, "--scheduler",
                         "tcp://127.0.0.1:1")
    assert code == 2 and "holds its pool in memory: leave out --scheduler" in err


def test_an_image_folder_is_listed_not_decoded(tmp_path, capsys, monkeypatch):
    import labelnext.data.images as images

    photos(tmp_path / "photos", per_class=4)
    paths = load_dataset(tmp_path / "photos", image_size=16, holdout=False).train_paths

    def no_decoding(*args, **kwargs):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(images, "_decode_images", no_decoding)
    rows = np.stack([np.full(3, ["red", "green", "blue"].index(p.split("/")[-2]), np.float32) for p in paths])
    shards.write_shards(rows + np.random.default_rng(0).normal(0, 0.1, rows.shape).astype(np.float32),
                        tmp_path / "emb", 5)
    code, out, err = _al(capsys, "init", tmp_path / "photos", "--project", tmp_path / "proj", "--initial", 6,
                         "--embeddings", tmp_path / "emb")
    assert code == 0, err
    config = json.loads((tmp_path / "proj" / "project.json").read_text())
    # No held-out split drawn (it would reorder the rows): the audit measures.
    assert (config["dataset"]["kind"], config["dataset"]["holdout"], config["audit"]) == ("listed", False, 0.1)
    from labelnext.loop.project import LabelingProject

    with LabelingProject(tmp_path / "proj") as proj:
        assert proj.data.train_paths == paths
        assert proj.data.kind_info.sheet_preview(proj.data, 0, tmp_path) == paths[0]


def test_rounds_read_the_shards_a_block_at_a_time(tmp_path, capsys, monkeypatch):
    """A 40,000-row pool with 8,192-row blocks: no read of the shards returns more rows than a block
    (or than the labeled rows, read once to train)."""
    n, d, block = 40_000, 16, 8192
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = (rng.normal(0, 1, (n, d)) + 2.0 * np.eye(3, d)[y]).astype(np.float32)
    shards.write_shards(x, tmp_path / "emb", 15_000)
    labels = np.where(np.arange(n) < 60, y.astype(str), "")
    (tmp_path / "items.csv").write_text("id,label\n" + "".join(f"item{i},{c}\n" for i, c in enumerate(labels)))
    code, out, err = _al(capsys, "init", tmp_path / "items.csv", "--project", tmp_path / "proj", "--embeddings",
                         tmp_path / "emb")
    assert code == 0, err
    reads = []
    original_read, original_take = shards.ShardedRows._read, shards.ShardedRows._take
    monkeypatch.setattr(shards.ShardedRows, "_read", lambda self, a, b: reads.append(b - a) or original_read(self, a, b))
    monkeypatch.setattr(shards.ShardedRows, "_take", lambda self, r: reads.append(r.size) or original_take(self, r))
    monkeypatch.setattr(checks, "BLOCK_ELEMENTS", block * d)
    code, out, err = _al(capsys, "round", "--project", tmp_path / "proj", "--budget", 20)
    assert code == 0, err
    assert sum(reads) >= 3 * n and max(reads) <= block, max(reads)  # statistics, predictions, the analyses
    record = json.loads((tmp_path / "proj" / "round-000" / "round.json").read_text())
    assert (record["n_audit"], record["evaluation"]) == (10, "audit")
    rows = [line.split(",")[1] for line in _selection(tmp_path / "proj", 0).splitlines()[1:]]
    assert len(rows) == 20 and all(int(r) >= 60 for r in rows)
