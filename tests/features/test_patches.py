"""patch_features: each step of the Coates, Lee & Ng (2011) pipeline on hand-built arrays."""
import json

import numpy as np
import pytest

from labelnext.features import patches as pf


def test_normalize_patches_gives_zero_mean_unit_variance_rows():
    out = pf.normalize_patches(np.array([[0.0, 2.0, 4.0], [5.0, 5.0, 5.0]]), eps=1e-12)
    np.testing.assert_allclose(out[0], np.array([-2.0, 0.0, 2.0]) / np.sqrt(8.0 / 3.0), rtol=1e-6)
    # A flat patch stays flat (0), not noise blown up by a tiny variance.
    np.testing.assert_allclose(pf.normalize_patches(np.array([[5.0, 5.0, 5.0]])), 0.0)


def test_zca_whitening_makes_the_covariance_the_identity():
    rng = np.random.RandomState(0)
    mix = np.array([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [0.3, -0.2, 0.1]])
    x = rng.randn(20_000, 3) @ mix + np.array([10.0, -3.0, 1.0])  # strongly correlated, very unequal scales
    mean, matrix = pf.fit_zca(x, eps=0.0)
    white = (x - mean) @ matrix
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(3), atol=1e-3)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-5)  # ZCA: symmetric, stays in pixel space
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-5)


def test_triangle_activation_on_two_centroids():
    centroids = np.array([[0.0, 0.0], [4.0, 0.0]])
    x = np.array([[1.0, 0.0], [2.0, 0.0], [5.0, 0.0]])
    # distances (1, 3), mean 2 -> (1, 0); (2, 2) -> (0, 0); (5, 1), mean 3 -> (0, 2)
    np.testing.assert_allclose(pf.triangle_activation(x, centroids), [[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]], atol=1e-5)


def test_quadrant_sum_pool_takes_the_middle_row_and_column_into_the_top_left():
    acts = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)  # [[0 1 2] [3 4 5] [6 7 8]]
    np.testing.assert_array_equal(pf.quadrant_sum_pool(acts), [[0 + 1 + 3 + 4, 2 + 5, 6 + 7, 8]])
    with pytest.raises(ValueError, match="2 x 2 grid"):
        pf.quadrant_sum_pool(np.zeros((1, 1, 3, 1)))


def test_dense_and_sampled_patches_are_flattened_the_same_way():
    img = np.arange(4 * 5 * 2).reshape(1, 4, 5, 2)
    grid = pf.image_patches(img, 2, stride=1)
    assert grid.shape == (1, 3, 4, 8)
    np.testing.assert_array_equal(grid[0, 1, 2], img[0, 1:3, 2:4].reshape(-1))
    assert pf.image_patches(img, 2, stride=2).shape == (1, 2, 2, 8)
    sampled = pf.sample_patches(img, 2, 50, random_state=0)
    dense = {tuple(row) for row in grid.reshape(-1, 8)}
    assert all(tuple(row) in dense for row in sampled)


def _stripes(n, horizontal, rng):
    base = np.zeros((12, 12))
    if horizontal:
        base[::3] = 255.0
    else:
        base[:, ::3] = 255.0
    return np.clip(base + rng.randn(n, 12, 12) * 20.0, 0, 255).astype(np.uint8)


def test_features_are_deterministic_label_free_and_separate_two_textures():
    rng = np.random.RandomState(0)
    images = np.concatenate([_stripes(20, True, rng), _stripes(20, False, rng)])[..., None].repeat(3, axis=3)
    kinds = np.repeat([0, 1], 20)
    kw = {"patch_size": 3, "n_centroids": 6, "n_patches": 3000}
    f, again = pf.patch_features(images, images[:7], random_state=1, **kw)
    assert f.shape == (40, 4 * 6) and f.dtype == np.float32
    # The second set is encoded by the encoder fitted on the first.
    np.testing.assert_array_equal(again, f[:7])
    np.testing.assert_array_equal(f, pf.patch_features(images, random_state=1, **kw)[0])
    assert not np.array_equal(f, pf.patch_features(images, random_state=2, **kw)[0])
    # Learned without labels, the space puts every image next to one of its own texture.
    z = (f - f.mean(axis=0)) / (f.std(axis=0) + 1e-6)
    d = ((z[:, None] - z[None]) ** 2).sum(axis=2) + np.diag(np.full(40, np.inf))
    assert (kinds[d.argmin(axis=1)] == kinds).all()


def test_encoder_features_are_four_quadrants_of_k_nonnegative_activations():
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, (6, 8, 8)).astype(np.uint8)  # grayscale is one channel
    enc = pf.PatchEncoder(patch_size=4, n_centroids=5, n_patches=500, stride=2, random_state=0).fit(images)
    assert enc.centroids_.shape == (5, 16) and enc.whiten_.shape == (16, 16)
    out = enc.transform(images)
    assert out.shape == (6, 20) and (out >= 0).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"patch_size": 8}, "patch_size must be an integer between 1 and 7"),
    ({"stride": 0}, "stride must be"),
    ({"n_centroids": 0}, "n_centroids must be"),
])
def test_bad_options_are_refused(kwargs, match):
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=match):
        pf.patch_features(images, **{"n_patches": 100, **kwargs})


def test_encoder_state_round_trip_encodes_the_same():
    rng = np.random.RandomState(4)
    images = rng.randint(0, 256, (10, 9, 9, 3)).astype(np.uint8)
    enc = pf.PatchEncoder(patch_size=3, n_centroids=4, n_patches=400, random_state=0).fit(images)
    state = {k: np.asarray(v) for k, v in enc.state().items()}  # as an .npz gives them back
    np.testing.assert_array_equal(pf.PatchEncoder.from_state(state).transform(images), enc.transform(images))


def test_features_model_refuses_what_patch_features_cannot_feed():
    assert pf.features_model("raw", "tabular", None) is None and pf.features_model("patches", "image") == "linear"
    assert pf.features_model("patches", "image", "mlp") == "mlp"
    with pytest.raises(ValueError, match="features 'patches' needs images, got text data"):
        pf.features_model("patches", "text")
    with pytest.raises(ValueError, match=r"model must be one of \['linear', 'mlp', 'logreg', 'spread', 'blend', 'auto'\], got 'small_cnn'"):
        pf.features_model("patches", "image", "small_cnn")


def test_a_project_trains_a_linear_model_on_patch_features_kept_after_the_first_round(tmp_path):
    from labelnext.loop.project import LabelingProject
    from helpers import photos

    photos(tmp_path / "photos", per_class=10)
    messages = []
    with LabelingProject.create(tmp_path / "proj", tmp_path / "photos", initial=6, steps=20, image_size=16,
                                features="patches", progress=messages.append) as proj:
        assert (proj.config["features"], proj.config["arch"]) == ("patches", "linear")
        first = proj.run_round(3)
        kept = tmp_path / "proj" / "features_patches.npz"
        assert first["features"] == "patches" and kept.exists()
        assert sum("patch features" in m for m in messages) == 1
        proj.import_labels(oracle=True)
        second = proj.run_round(3)
        # Read back, not computed again; the round's model reads the 4 x 400 features.
        assert sum("patch features" in m for m in messages) == 1 and second["n_labeled"] == 9
        run = json.loads((tmp_path / "proj" / "round-001" / "model" / "metadata.json").read_text())
        assert run["features"] == "patches" and run["input_shape"] == [4 * pf.N_CENTROIDS]
        # A damaged file is said and computed again, the same features (the encoder is seeded).
        before = np.load(kept)["pool"]
        kept.write_bytes(b"not an npz")
        pool, _ = proj._model_inputs(2)
        assert any("is damaged" in m for m in messages) and sum("patch features" in m for m in messages) == 2
        np.testing.assert_array_equal(pool, before)
    with pytest.raises(ValueError, match="features 'patches' needs images, got tabular data"):
        table = tmp_path / "t.csv"
        table.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
        LabelingProject.create(tmp_path / "tab", table, initial=6, features="patches")
    # On the images themselves a table model is refused too.
    with pytest.raises(ValueError, match=r"--arch must be one of \['mobilenetv3', 'small_cnn', 'auto'\], got 'linear'"):
        LabelingProject.create(tmp_path / "img", tmp_path / "photos", initial=6, arch="linear")
    assert not (tmp_path / "tab").exists() and not (tmp_path / "img").exists()


def test_preprocessing_is_fitted_on_the_pool_only_where_it_needs_no_labels():
    from labelnext.training.backbones import adapt_data

    x, rows = np.arange(10.0)[:, None], np.array([1, 3])
    for arch in ("linear", "textmlp", "lstm"):
        assert adapt_data(arch, x, rows) is x
    np.testing.assert_array_equal(adapt_data("mlp", x, rows), x[rows])  # also on patch features
    assert adapt_data("small_cnn", x, rows) is None
