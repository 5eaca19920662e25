"""Streaming inference (inference.py): outputs equal to the in-memory pass, resume after a crash,
refusal of another model or source, the command line, a folder of images read lazily."""
import json
from unittest.mock import ANY

import numpy as np
import pytest
from PIL import Image

from labelnext import heuristics as alf
from labelnext.training import backbones, predict
from labelnext.training.fingerprint import model_fingerprint
from labelnext.utils import console as cli
from labelnext.scale import inference
from labelnext.scale import shards
from labelnext.data.images import list_image_files, read_images

SIDE, N_CLASSES, BATCH, BLOCK = 8, 3, 16, 32


@pytest.fixture(scope="module")
def model():
    backbones.load_keras().utils.set_random_seed(0)
    return backbones.build_model((SIDE, SIDE, 3), N_CLASSES, arch="small_cnn")


@pytest.fixture(scope="module")
def other_model(model):
    """The same network with one bias moved: another model for the fingerprint."""
    keras = backbones.load_keras()
    clone = keras.models.clone_model(model)
    weights = model.get_weights()
    weights[-1] = weights[-1] + 0.5
    clone.set_weights(weights)
    return clone


def images(n, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, SIDE, SIDE, 3)).astype(np.uint8)


class RecordingSource(inference.ArraySource):
    """An array source that records the blocks it is asked for and dies at row ``crash_at``."""

    def __init__(self, x, crash_at=None):
        super().__init__(x)
        self.crash_at, self.starts = crash_at, []

    def read(self, start, stop):
        if start == self.crash_at:
            raise RuntimeError("killed")
        self.starts.append(start)
        return super().read(start, stop)


def test_outputs_equal_the_in_memory_pass_from_an_array_and_a_memmap(model, tmp_path):
    x = images(150)  # 4 full blocks and a short one; the last batch is short too
    want_p, want_e = predict.predict_with_embeddings(model, x, batch_size=BATCH)
    np.save(tmp_path / "pool.npy", x)
    for name, source in (("a", x), ("m", tmp_path / "pool.npy")):
        probs, emb = inference.stream_predict(model, source, tmp_path / name, block_rows=BLOCK, batch_size=BATCH,
                                              progress=False)
        assert isinstance(probs, np.memmap) and probs.dtype == np.float32 and emb.dtype == np.float32
        assert np.array_equal(np.load(tmp_path / name / "probs.npy", mmap_mode="r"), want_p)
        assert np.array_equal(np.load(tmp_path / name / "embeddings.npy", mmap_mode="r"), want_e)
        state = json.loads((tmp_path / name / "state.json").read_text())
        assert (state["rows_done"], state["last_block"], state["complete"]) == (150, [128, 150], True)
        assert not (tmp_path / name / "items.txt").exists()


def test_a_rerun_after_a_crash_computes_only_the_remaining_blocks(model, tmp_path):
    x = images(160, seed=1)
    crashing = RecordingSource(x, crash_at=3 * BLOCK)  # blocks 0-2 finish, block 3 dies
    with pytest.raises(RuntimeError, match="killed"):
        inference.stream_predict(model, crashing, tmp_path / "out", block_rows=BLOCK, batch_size=BATCH, progress=False)
    state = json.loads((tmp_path / "out" / "state.json").read_text())
    assert (state["rows_done"], state["last_block"], state["complete"]) == (96, [64, 96], False)
    rerun = RecordingSource(x)
    probs, emb = inference.stream_predict(model, rerun, tmp_path / "out", block_rows=BLOCK, batch_size=BATCH,
                                          progress=False)
    assert rerun.starts == [96, 128]
    want_p, want_e = predict.predict_with_embeddings(model, x, batch_size=BATCH)
    assert np.array_equal(probs, want_p) and np.array_equal(emb, want_e)
    done = RecordingSource(x)
    inference.stream_predict(model, done, tmp_path / "out", block_rows=BLOCK, batch_size=BATCH, progress=False)
    assert done.starts == []  # complete: nothing read again


def test_another_model_or_source_is_refused_unless_overwrite(model, other_model, tmp_path):
    x = images(64, seed=2)
    out = tmp_path / "out"
    inference.stream_predict(model, x, out, block_rows=BLOCK, batch_size=BATCH, progress=False)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    with pytest.raises(ValueError, match=r"holds the outputs of another model \(64/64 rows done\)"):
        inference.stream_predict(other_model, x, out, block_rows=BLOCK, batch_size=BATCH, progress=False)
    changed = x.copy()
    changed[0, 0, 0, 0] ^= 1  # row 0 is one of the fingerprinted rows
    with pytest.raises(ValueError, match="holds the outputs of another source"):
        inference.stream_predict(model, changed, out, block_rows=BLOCK, batch_size=BATCH, progress=False)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    probs, emb = inference.stream_predict(other_model, x, out, block_rows=BLOCK, batch_size=BATCH, overwrite=True,
                                          progress=False)
    want_p, want_e = predict.predict_with_embeddings(other_model, x, batch_size=BATCH)
    assert np.array_equal(probs, want_p) and np.array_equal(emb, want_e)
    (out / "embeddings.npy").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="has a missing or damaged embeddings.npy: start again with overwrite"):
        inference.stream_predict(other_model, x, out, block_rows=BLOCK, batch_size=BATCH, progress=False)


def test_bad_arguments_raise_before_anything_is_written(model, tmp_path):
    x = images(40)
    with pytest.raises(ValueError, match=r"block_rows must be a multiple of batch_size \(16\), got 24"):
        inference.stream_predict(model, x, tmp_path / "a", block_rows=24, batch_size=BATCH)
    with pytest.raises(ValueError, match=r"source items have shape \(9, 9, 3\), the model takes \(8, 8, 3\)"):
        inference.stream_predict(model, np.zeros((4, 9, 9, 3)), tmp_path / "b")
    with pytest.raises(ValueError, match="holds probs.npy but no state.json"):
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "probs.npy").write_bytes(b"mine")
        inference.stream_predict(model, x, tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["c"]
    assert (tmp_path / "c" / "probs.npy").read_bytes() == b"mine"


def test_progress_lines_show_rate_and_time_left_and_can_be_silenced(model, tmp_path, capsys):
    inference.stream_predict(model, images(64), tmp_path / "a", block_rows=BLOCK, batch_size=BATCH)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("inference: 64 items in blocks of 32")
    assert lines[1].startswith("inference: 32/64 items (50%), ") and lines[1].endswith(" left")
    assert " items/s, " in lines[2] and lines[2].endswith("0:00:00 left")
    inference.stream_predict(model, images(64), tmp_path / "b", block_rows=BLOCK, batch_size=BATCH, progress=False)
    assert capsys.readouterr().err == ""


def _write_images(folder):
    """Ten images in nested folders, PNG and JPEG, of several sizes; plus files that are not images."""
    rng = np.random.RandomState(3)
    names = ["b/0.png", "a/2.jpg", "a/10.jpeg", "c/d/1.png", "top.png", "a/1.png", "c/0.jpg", "z.PNG", "c/d/e/9.png", "y.jpg"]
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.randint(0, 256, (10 + i, 12, 3)).astype(np.uint8)).save(path)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"skipped")
    return sorted(names)


def test_a_folder_of_images_is_decoded_block_by_block_in_recorded_order(model, tmp_path, monkeypatch):
    names = _write_images(tmp_path / "imgs")
    source = inference.ImageFolderSource(tmp_path / "imgs", SIDE)
    assert source.paths == names
    monkeypatch.chdir(tmp_path / "imgs")
    assert [p for p, _ in list_image_files(".")] == names
    assert list_image_files("a") == [("1.png", (tmp_path / "imgs" / "a" / "1.png").stat().st_size),
                                     ("10.jpeg", (tmp_path / "imgs" / "a" / "10.jpeg").stat().st_size), ("2.jpg", ANY)]
    probs, emb = inference.stream_predict(model, tmp_path / "imgs", tmp_path / "out", block_rows=4, batch_size=4,
                                          progress=False)
    assert (tmp_path / "out" / "items.txt").read_text().splitlines() == names
    x = read_images([tmp_path / "imgs" / n for n in names], SIDE)
    want_p, want_e = predict.predict_with_embeddings(model, x, batch_size=4)
    assert np.array_equal(probs, want_p) and np.array_equal(emb, want_e)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "imgs" / "new.png")
    with pytest.raises(ValueError, match=r"holds the outputs of another source \(10/10 rows done\)"):
        inference.stream_predict(model, tmp_path / "imgs", tmp_path / "out", block_rows=4, batch_size=4)


def test_streamed_outputs_feed_analyze_and_open_rows_as_they_are(model, tmp_path):
    x = images(120, seed=4)
    probs, emb = inference.stream_predict(model, x, tmp_path / "out", block_rows=BLOCK, batch_size=BATCH,
                                          progress=False)
    want_p, want_e = predict.predict_with_embeddings(model, x, batch_size=BATCH)
    labeled = np.zeros(120, bool)
    labeled[::6] = True
    params = {"diversity": {"n_clusters": 4}, "novelty": {"k_neighbors": 3}}
    got = alf.analyze(probs, emb, labeled, params, budget=10, random_state=0)
    want = alf.analyze(want_p, want_e, labeled, params, budget=10, random_state=0)
    assert np.array_equal(got["intersection"]["rows"], want["intersection"]["rows"])
    rows = shards.open_rows(tmp_path / "out" / "embeddings.npy")
    assert isinstance(rows, np.memmap) and np.array_equal(rows[[5, 0, 119]], want_e[[5, 0, 119]])


# --------------------------------------------------------------------------- command line
def _cli(argv, capsys):
    code = cli.run_cli(inference.main, argv, flags=inference.FLAGS)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_the_outputs_and_refuses_another_source(model, tmp_path, capsys):
    model.save(tmp_path / "m.keras")
    x = images(48, seed=5)
    np.save(tmp_path / "pool.npy", x)
    argv = ["--model", str(tmp_path / "m.keras"), "--array", str(tmp_path / "pool.npy"), "--out", str(tmp_path / "out"),
            "--block-rows", "32", "--batch-size", "16", "--quiet"]
    code, out, err = _cli(argv, capsys)
    assert (code, err) == (0, "")
    assert out.strip().endswith("embeddings.npy (48, 96)")
    want_p, want_e = predict.predict_with_embeddings(model, x, batch_size=16)
    assert np.array_equal(np.load(tmp_path / "out" / "probs.npy"), want_p)
    assert np.array_equal(np.load(tmp_path / "out" / "embeddings.npy"), want_e)
    np.save(tmp_path / "pool.npy", images(48, seed=6))
    code, out, err = _cli(argv, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "another source (48/48 rows done): start again with overwrite (--overwrite)" in err
    assert _cli(argv + ["--overwrite"], capsys)[0] == 0


@pytest.mark.parametrize("extra, message", [
    (["--block-rows", "0"], "error: --block-rows must be an integer >= 1, got 0"),
    (["--block-rows", "24"], "error: --block-rows must be a multiple of --batch-size (16), got 24"),
    (["--batch-size", "-1"], "error: --batch-size must be an integer >= 1, got -1"),
])
def test_cli_bad_numbers_exit_2_with_nothing_written(tmp_path, capsys, extra, message):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "m.keras").write_bytes(b"")
    argv = ["--model", str(tmp_path / "m.keras"), "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "out"),
            "--batch-size", "16", *extra]
    assert _cli(argv, capsys) == (2, "", message + "\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "m.keras"]


def test_cli_bad_paths_exit_2_with_nothing_written(tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "file").write_text("x")
    model = ["--model", str(tmp_path / "m.keras")]
    code, _, err = _cli(model + ["--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.startswith("error: --model ") and "does not exist" in err
    code, _, err = _cli(model + ["--images", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], capsys)
    assert (code, err) == (2, f"error: --images {str(tmp_path / 'nope')!r} is not a folder\n")
    code, _, err = _cli(model + ["--array", str(tmp_path / "imgs"), "--out", str(tmp_path / "o")], capsys)
    assert (code, err) == (2, f"error: --array {str(tmp_path / 'imgs')!r} is not a file\n")
    (tmp_path / "m.keras").write_bytes(b"")
    code, _, err = _cli(model + ["--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "file" / "o")], capsys)
    assert code == 2 and err.startswith(f"error: {tmp_path / 'file'}: ")
    with pytest.raises(SystemExit) as exited:
        inference.main(model + ["--out", str(tmp_path / "o")])  # neither --images nor --array
    assert exited.value.code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "imgs", "m.keras"]


# --------------------------------------------------------------------------- blocks out of order, Dask workers
def test_only_the_finished_prefix_of_blocks_out_of_order_is_recorded(model, tmp_path):
    x = images(96, seed=7)
    out = tmp_path / "out"
    fingerprint = {"model": model_fingerprint(model), "source": inference.ArraySource(x).fingerprint(),
                   "n": 96, "n_classes": N_CLASSES, "n_features": 96}
    state = inference._start(out, inference.ArraySource(x), fingerprint)
    p, e = predict.predict_with_embeddings(model, x, batch_size=BATCH)
    blocks = [(0, 32), (32, 64), (64, 96)]

    def finished_then_killed():  # workers return block 1, then block 0, then die
        for start, stop in ((32, 64), (0, 32)):
            yield start, stop, p[start:stop], e[start:stop]
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        inference._record_blocks(finished_then_killed(), blocks, out, state, progress=False)
    saved = json.loads((out / "state.json").read_text())
    assert (saved["rows_done"], saved["last_block"], saved["complete"]) == (64, [32, 64], False)
    assert np.array_equal(np.load(out / "embeddings.npy")[:64], e[:64])


def test_a_worker_refuses_a_model_file_other_than_the_clients(model, other_model, tmp_path):
    model.save(tmp_path / "m.keras")
    digest = model_fingerprint(other_model)
    with pytest.raises(ValueError, match="on this worker is not the client's model"):
        inference.predict_block(tmp_path / "m.keras", digest, inference.ArraySource(images(4)).reader(0, 4), BATCH)


def test_dask_workers_predict_blocks_equal_to_the_in_memory_pass(model, tmp_path):
    distributed = pytest.importorskip("distributed")
    model.save(tmp_path / "m.keras")
    names = _write_images(tmp_path / "imgs")
    x = images(100, seed=8)
    np.save(tmp_path / "pool.npy", x)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, memory_limit="2GiB") as cluster, \
            distributed.Client(cluster) as client:
        got = inference.stream_predict(tmp_path / "m.keras", tmp_path / "pool.npy", tmp_path / "a", block_rows=BLOCK,
                                       batch_size=BATCH, progress=False, client=client)
        got_images = inference.stream_predict(tmp_path / "m.keras", tmp_path / "imgs", tmp_path / "b", block_rows=4,
                                              batch_size=4, progress=False, client=client)
    for (probs, emb), want in ((got, predict.predict_with_embeddings(model, x, batch_size=BATCH)),
                               (got_images, predict.predict_with_embeddings(
                                   model, read_images([tmp_path / "imgs" / n for n in names], SIDE), batch_size=4))):
        assert np.array_equal(probs, want[0]) and np.array_equal(emb, want[1])
    assert json.loads((tmp_path / "a" / "state.json").read_text())["complete"] is True


def test_an_unreadable_image_stops_the_pass_after_the_blocks_before_it(model, tmp_path):
    names = _write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / names[5]).write_bytes(b"not a png")  # in the second block of four
    with pytest.raises(ValueError, match=f"cannot read image .*{names[5]}"):
        inference.stream_predict(model, tmp_path / "imgs", tmp_path / "out", block_rows=4, batch_size=4, progress=False)
    state = json.loads((tmp_path / "out" / "state.json").read_text())
    assert (state["rows_done"], state["complete"]) == (4, False)
