"""Tests for datasets.py: every layout on tiny files written here, plus bad inputs."""
import os
import pickle
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]

from labelnext import data as datasets  # noqa: E402
from labelnext.data import Dataset, DatasetError, dataset_fingerprint, load_dataset, resize_images  # noqa: E402

REAL_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


# --------------------------------------------------------------------------- helpers

def _save(path, array):
    """Write an image file (format from the suffix), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def _solid(h, w, color):
    """(h, w, len(color)) image of one colour; a 2-d image for a scalar grey level."""
    if np.isscalar(color):
        return np.full((h, w), color, dtype=np.uint8)
    return np.broadcast_to(np.asarray(color, dtype=np.uint8), (h, w, len(color))).copy()


def _make_tree(root, *, test=True, unlabeled=False):
    """A small image-folder tree with mixed sizes, modes and formats.

    Returns the expected training colours, in load order (classes sorted, files sorted).
    """
    # 'bird' < 'cat': classes must come back sorted whatever the creation order.
    _save(root / "train" / "cat" / "a.png", _solid(40, 30, (200, 10, 10)))           # RGB PNG, non-square
    _save(root / "train" / "cat" / "b.png", _solid(8, 8, 90))                        # grayscale PNG
    _save(root / "train" / "bird" / "x.png", _solid(50, 50, (10, 200, 30, 0)))       # RGBA: alpha dropped
    _save(root / "train" / "bird" / "y.jpg", _solid(64, 48, (120, 120, 120)))         # JPEG
    (root / "train" / "bird" / "notes.txt").write_text("ignored")
    expected = [(10, 200, 30), (120, 120, 120), (200, 10, 10), (90, 90, 90)]
    if test:
        _save(root / "test" / "cat" / "t.png", _solid(20, 20, (1, 2, 3)))
        _save(root / "test" / "bird" / "u.png", _solid(33, 33, (4, 5, 6)))
    if unlabeled:
        _save(root / "unlabeled" / "p.png", _solid(12, 12, (7, 8, 9)))
        _save(root / "unlabeled" / "q.jpg", _solid(70, 70, (250, 250, 250)))
        expected += [(7, 8, 9), (250, 250, 250)]
    return expected


def _write_cifar_pickles(folder, per_batch=2, n_test=3, seed=0):
    """Tiny CIFAR-10 python pickles; returns the images and labels in load order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, size=per_batch).tolist()
        # CIFAR rows are channel-first, row-major: R plane, G plane, B plane.
        batch = {b"data": x.transpose(0, 3, 1, 2).reshape(per_batch, 3072), b"labels": y}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
        xs.append(x)
        ys.extend(y)
    x_test = rng.integers(0, 256, size=(n_test, 32, 32, 3), dtype=np.uint8)
    y_test = [1, 2, 3][:n_test]
    (folder / "test_batch").write_bytes(pickle.dumps(
        {b"data": x_test.transpose(0, 3, 1, 2).reshape(n_test, 3072), b"labels": y_test}))
    names = [f"c{i}".encode() for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return np.concatenate(xs), np.array(ys), x_test, np.array(y_test)


def _centre_colours(x):
    """Colour of the centre pixel of each image, as tuples."""
    s = x.shape[1] // 2
    return [tuple(int(v) for v in img[s, s]) for img in x]


# --------------------------------------------------------------------------- import

def test_import_pulls_in_no_framework():
    import subprocess

    code = ("import sys, labelnext.data; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- digits

def test_digits_shapes_types_and_classes():
    ds = load_dataset()
    assert isinstance(ds, Dataset)
    assert ds.name == "digits" and ds.source == "sklearn.datasets.load_digits"
    assert ds.x_train.shape == (1437, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (360, 32, 32, 3) and ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    assert ds.class_names == [str(c) for c in range(10)] and ds.n_classes == 10
    assert ds.has_labels and ds.train_paths is None
    assert ds.x_train.max() == 255  # scaled from 0..16
    assert np.array_equal(ds.x_train[..., 0], ds.x_train[..., 2])  # grayscale repeated


def test_digits_split_is_fixed_whatever_the_global_seed():
    np.random.seed(1)
    a = load_dataset("digits", image_size=16)
    np.random.seed(2)
    b = load_dataset("digits", image_size=16)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert dataset_fingerprint(a) != dataset_fingerprint(load_dataset("digits", image_size=8))


def test_digits_split_is_a_stratified_partition():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # At 8x8 nothing is resized, so images can be matched to the originals exactly.
    ds = load_dataset("digits", image_size=8)
    original = np.rint(bunch.images * 255 / 16).astype(np.uint8)
    rows = lambda x, y: sorted(zip(map(bytes, x.reshape(len(x), -1)), y.tolist()))  # noqa: E731
    both = rows(ds.x_train[..., 0], ds.y_train) + rows(ds.x_test[..., 0], ds.y_test)
    assert sorted(both) == rows(original, bunch.target)  # disjoint and complete
    per_class = np.bincount(bunch.target, minlength=10)
    assert np.all(np.abs(np.bincount(ds.y_test, minlength=10) - 0.2 * per_class) <= 1)


# --------------------------------------------------------------------------- resize_images

def test_resize_images_channels_and_known_values():
    grey = np.full((2, 5, 7), 100, dtype=np.uint8)
    out = resize_images(grey, 16)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8
    assert np.all(out == 100)  # bilinear of a constant is that constant

    rgba = np.zeros((1, 8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 77
    assert np.array_equal(resize_images(rgba, 8)[0, 0, 0], [10, 20, 30])

    assert np.all(resize_images(np.full((1, 9, 9, 1), 0.5), 8) == 128)  # floats in [0, 1] x 255
    assert np.all(resize_images(np.full((1, 9, 9), 200.0), 8) == 200)  # floats in [0, 255] kept
    assert resize_images(np.zeros((0, 4, 4)), 8).shape == (0, 8, 8, 3)


def test_resize_images_returns_a_new_array():
    x = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    out = resize_images(x, 8)
    out[:] = 1
    assert x.max() == 0


@pytest.mark.parametrize("images, match", [
    (np.zeros((2, 8, 8, 5)), r"\(n, H, W\)"),
    (np.zeros((8, 8)), r"\(n, H, W\)"),
    (np.array([[["a"]]]), "numeric"),
    (np.full((1, 8, 8), 300), r"\[0, 255\]"),
    (np.full((1, 8, 8), -0.5), r"\[0, 1\] or \[0, 255\]"),
])
def test_resize_images_rejects_bad_images(images, match):
    with pytest.raises(DatasetError, match=match):
        resize_images(images, 8)


# --------------------------------------------------------------------------- (a) pickles

def test_cifar_pickle_folder(tmp_path):
    x, y, x_test, y_test = _write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    ds = load_dataset(tmp_path / "cifar-10-batches-py")
    assert np.array_equal(ds.x_train, x) and np.array_equal(ds.y_train, y)
    assert np.array_equal(ds.x_test, x_test) and np.array_equal(ds.y_test, y_test)
    assert ds.class_names == [f"c{i}" for i in range(10)]
    assert ds.name == "cifar-10-batches-py" and ds.train_paths is None
    assert ds.source == str((tmp_path / "cifar-10-batches-py").resolve())


def test_cifar_pickle_parent_folder_as_data_dir_resized(tmp_path):
    _write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir=tmp_path, image_size=16)
    assert ds.name == "cifar10"
    assert ds.x_train.shape == (10, 16, 16, 3) and ds.x_test.shape == (3, 16, 16, 3)


def test_cifar10_found_under_keras_home(tmp_path, monkeypatch):
    x, _, _, _ = _write_cifar_pickles(tmp_path / "kh" / "datasets" / "cifar-10-batches-py")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    ds = load_dataset("cifar10")
    assert ds.name == "cifar10" and np.array_equal(ds.x_train, x)


def test_cifar10_offline_fallback_says_where_to_put_the_data(tmp_path, monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/: [Errno -3] name resolution")

    # A stand-in keras: the real one would import TensorFlow and try the network.
    fake = types.SimpleNamespace(datasets=types.SimpleNamespace(cifar10=types.SimpleNamespace(load_data=offline)))
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = str(tmp_path / "kh" / "datasets" / "cifar-10-batches-py")
    with pytest.raises(DatasetError, match=f"URL fetch failure.*put the CIFAR-10 python pickles.*in {expected}"):
        load_dataset("cifar10")


# --------------------------------------------------------------------------- (b) trees

def test_tree_with_test_and_unlabeled(tmp_path):
    expected = _make_tree(tmp_path / "shop", unlabeled=True)
    ds = load_dataset(tmp_path / "shop", image_size=16)
    assert ds.name == "shop" and ds.class_names == ["bird", "cat"]
    assert ds.x_train.shape == (6, 16, 16, 3) and ds.x_train.dtype == np.uint8
    # Training items come in a fixed shuffled order; sort by path to compare with the files.
    order = np.argsort(ds.train_paths)
    assert ds.y_train[order].tolist() == [0, 0, 1, 1, -1, -1] and ds.has_labels
    assert sorted(ds.y_train.tolist()) != ds.y_train.tolist()  # shuffled, not class by class
    for got, want in zip(_centre_colours(ds.x_train[order]), expected):
        assert np.allclose(got, want, atol=3)  # JPEG is lossy
    assert ds.x_test.shape == (2, 16, 16, 3) and ds.y_test.tolist() == [0, 1]
    assert _centre_colours(ds.x_test) == [(4, 5, 6), (1, 2, 3)]
    names = [Path(p).relative_to(tmp_path / "shop").as_posix() for p in np.array(ds.train_paths)[order]]
    assert names == ["train/bird/x.png", "train/bird/y.jpg", "train/cat/a.png", "train/cat/b.png",
                     "unlabeled/p.png", "unlabeled/q.jpg"]
    assert all(os.path.isabs(p) for p in ds.train_paths)


def test_tree_without_test_folder(tmp_path):
    _make_tree(tmp_path / "t", test=False)
    ds = load_dataset("cifar10", data_dir=tmp_path / "t", image_size=8)
    assert ds.name == "cifar10" and ds.x_test is None and ds.y_test is None
    assert ds.x_train.shape == (4, 8, 8, 3)


def test_flat_class_folders_inside_a_wrapping_folder(tmp_path):
    _save(tmp_path / "wrap" / "inner" / "b" / "1.png", _solid(9, 9, (5, 5, 5)))
    _save(tmp_path / "wrap" / "inner" / "a" / "1.png", _solid(9, 9, (6, 6, 6)))
    _save(tmp_path / "wrap" / "inner" / "a" / "2.jpeg", _solid(9, 9, 0))
    ds = load_dataset(data_dir=tmp_path / "wrap", image_size=8)
    assert ds.name == "wrap" and ds.class_names == ["a", "b"]
    assert sorted(ds.y_train.tolist()) == [0, 0, 1] and ds.x_test is None


def test_tree_decoded_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.images, "_CACHE_MIN_FILES", 0)
    _make_tree(tmp_path / "t")
    cache = tmp_path / "cache"
    first = load_dataset(tmp_path / "t", image_size=8, cache_dir=cache)
    assert len(list((cache / "decoded").glob("*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    with monkeypatch.context() as m:
        m.setattr(datasets.images, "_decode_images", no_decoding)
        second = load_dataset(tmp_path / "t", image_size=8, cache_dir=cache)
    assert np.array_equal(first.x_train, second.x_train) and np.array_equal(first.x_test, second.x_test)
    assert first.train_paths == second.train_paths

    _save(tmp_path / "t" / "train" / "cat" / "c.png", _solid(8, 8, 3))  # new file: new key
    third = load_dataset(tmp_path / "t", image_size=8, cache_dir=cache)
    assert len(third.x_train) == 5 and len(list((cache / "decoded").glob("*.npz"))) == 2


# --------------------------------------------------------------------------- (c) npz

def test_npz_with_column_labels_and_grayscale(tmp_path):
    path = tmp_path / "mnistish.npz"
    x = np.arange(5 * 28 * 28, dtype=np.int64).reshape(5, 28, 28) % 256  # grayscale (n, H, W)
    np.savez(path, x_train=x.astype(np.uint8), y_train=np.array([[0], [1], [2], [1], [-1]]),
             x_test=np.zeros((2, 28, 28, 4), dtype=np.uint8), y_test=np.array([[2], [0]]),
             class_names=np.array(["zero", "one", "two"]))
    ds = load_dataset(path, image_size=16)
    assert ds.name == "mnistish" and ds.source == str(path.resolve())
    assert ds.x_train.shape == (5, 16, 16, 3) and ds.x_test.shape == (2, 16, 16, 3)
    assert ds.y_train.tolist() == [0, 1, 2, 1, -1] and ds.y_test.tolist() == [2, 0]
    assert ds.y_train.dtype == np.int64 and ds.class_names == ["zero", "one", "two"]


def test_npz_without_test_split_or_names(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((3, 32, 32, 3), dtype=np.uint8), y_train=np.array([0, 3, 1]))
    ds = load_dataset(path)
    assert ds.x_test is None and ds.y_test is None and ds.class_names == ["0", "1", "2", "3"]


def test_npz_all_unknown_labels(tmp_path):
    path = tmp_path / "pool.npz"
    np.savez(path, x_train=np.zeros((2, 8, 8, 3)), y_train=np.array([-1, -1]), class_names=np.array(["a", "b"]))
    ds = load_dataset(path, image_size=8)
    assert not ds.has_labels and ds.n_classes == 2


# --------------------------------------------------------------------------- (d) archives

@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_archive_of_a_tree_is_extracted_once(tmp_path, suffix):
    _make_tree(tmp_path / "src" / "cifar10")
    archive = tmp_path / f"mini{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for p in sorted((tmp_path / "src").rglob("*")):
                zf.write(p, p.relative_to(tmp_path / "src"))
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(tmp_path / "src" / "cifar10", arcname="cifar10")
    cache = tmp_path / "cache"
    ds = load_dataset(archive, image_size=8, cache_dir=cache)
    assert ds.name == "mini" and ds.source == str(archive.resolve())
    assert ds.class_names == ["bird", "cat"] and ds.x_train.shape == (4, 8, 8, 3) and len(ds.x_test) == 2
    assert all(Path(p).is_relative_to(cache / "extracted") for p in ds.train_paths)
    again = load_dataset(archive, image_size=8, cache_dir=cache)
    assert again.train_paths == ds.train_paths
    assert [p.name for p in (cache / "extracted").iterdir()] == [Path(ds.train_paths[0]).parents[3].name]


def test_archive_uses_AL_CACHE_DIR(tmp_path, monkeypatch):
    _make_tree(tmp_path / "src", test=False)
    archive = tmp_path / "a.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "src", arcname="a")
    monkeypatch.setenv("AL_CACHE_DIR", str(tmp_path / "env-cache"))
    ds = load_dataset(archive, image_size=8)
    assert Path(ds.train_paths[0]).is_relative_to(tmp_path / "env-cache")


# --------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("size", [4, 2000, 32.0, True, "32", None])
def test_bad_image_size(size):
    with pytest.raises(DatasetError, match=r"image_size must be an int in \[8, 1024\]"):
        load_dataset("digits", image_size=size)


def test_empty_name():
    with pytest.raises(DatasetError, match="empty string"):
        load_dataset("")


def test_unknown_name():
    with pytest.raises(DatasetError, match="name='mnist' is not a known dataset.*'digits', 'cifar10'"):
        load_dataset("mnist")


def test_missing_path(tmp_path):
    missing = str(tmp_path / "nope" / "data.npz")
    with pytest.raises(DatasetError, match="name=.*data.npz' does not exist"):
        load_dataset(missing)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DatasetError, match="data_dir=.*nope' does not exist"):
        load_dataset("cifar10", data_dir=tmp_path / "nope")


def test_unrecognised_folder_layout(tmp_path):
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="no recognised layout.*image-folder tree"):
        load_dataset(tmp_path / "odd")


def test_unrecognised_file_type(tmp_path):
    (tmp_path / "data.dat").write_text("1,2,3")
    with pytest.raises(DatasetError, match="file of unknown type.*\\.npz"):
        load_dataset(tmp_path / "data.dat")


def test_npz_missing_keys(tmp_path):
    np.savez(tmp_path / "x.npz", x_train=np.zeros((2, 8, 8)), x_test=np.zeros((1, 8, 8)))
    with pytest.raises(DatasetError, match=r"missing keys \['y_train', 'y_test'\]"):
        load_dataset(tmp_path / "x.npz")


def test_npz_labels_shape_mismatch(tmp_path):
    np.savez(tmp_path / "x.npz", x_train=np.zeros((5, 8, 8)), y_train=np.zeros(4, dtype=int))
    with pytest.raises(DatasetError, match=r"labels shapes mismatch.*\(4,\) but there are 5 images"):
        load_dataset(tmp_path / "x.npz")


def test_npz_object_arrays_refused(tmp_path):
    np.savez(tmp_path / "x.npz", x_train=np.zeros((1, 8, 8)), y_train=np.zeros(1, dtype=int),
             class_names=np.array(["a", 1], dtype=object))
    with pytest.raises(DatasetError, match="without pickle.*dtype=str"):
        load_dataset(tmp_path / "x.npz")


def test_class_folder_without_images(tmp_path):
    _make_tree(tmp_path / "t")
    (tmp_path / "t" / "train" / "dog").mkdir()
    with pytest.raises(DatasetError, match="class folder .*dog has no images"):
        load_dataset(tmp_path / "t")


def test_test_class_unknown_to_train(tmp_path):
    _make_tree(tmp_path / "t")
    _save(tmp_path / "t" / "test" / "dog" / "1.png", _solid(8, 8, 1))
    with pytest.raises(DatasetError, match="test class folder .*dog has no matching folder"):
        load_dataset(tmp_path / "t")


def test_corrupt_image(tmp_path):
    _make_tree(tmp_path / "t")
    (tmp_path / "t" / "train" / "cat" / "z.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="cannot read image .*z.jpg"):
        load_dataset(tmp_path / "t")


def test_bad_pickle_data_shape(tmp_path):
    _write_cifar_pickles(tmp_path / "p")
    (tmp_path / "p" / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8),
                                                                 b"labels": [0, 1]}))
    with pytest.raises(DatasetError, match=r"must be \(n, 3072\) uint8"):
        load_dataset(tmp_path / "p")


def test_tar_member_outside_destination_refused(tmp_path):
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(evil, arcname="../escaped.txt")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="cannot extract"):
        load_dataset(archive, cache_dir=cache)
    assert list((cache / "extracted").iterdir()) == []  # no half-extracted folder left
    assert not (cache / "escaped.txt").exists()


def test_name_conflicting_with_data_dir(tmp_path):
    _make_tree(tmp_path / "t")
    with pytest.raises(DatasetError, match="name='mnist' conflicts with data_dir"):
        load_dataset("mnist", data_dir=tmp_path / "t")


# --------------------------------------------------------------------------- real CIFAR-10

def test_real_cifar10_jpeg_archive():
    """60,000 JPEGs: ~20-25 s on a cold cache (2 busy cores), under 1 s once cached."""
    if not REAL_CIFAR.is_file():
        pytest.skip(f"{REAL_CIFAR} not present")
    ds = load_dataset(REAL_CIFAR)  # default cache: <repo>/.cache/datasets (git-ignored)
    assert ds.name == "cifar10-jpg"
    assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_test.shape == (10000, 32, 32, 3)
    assert ds.class_names == datasets.CIFAR10_CLASSES
    assert np.array_equal(np.bincount(ds.y_train), np.full(10, 5000))
    assert np.array_equal(np.bincount(ds.y_test), np.full(10, 1000))
    assert len(ds.train_paths) == 50000 and min(ds.train_paths).endswith("train/airplane/0000.jpg")
    assert 100 < ds.x_train.mean() < 140  # real photos, not blank decodes


# --------------------------------------------------------------------------- untrusted data files

class _TouchesAFile:
    """A pickle payload that, if unpickled with pickle.load, creates a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("archive", [False, True])
def test_pickle_that_runs_code_is_refused(tmp_path, archive):
    marker = tmp_path / "pwned.txt"
    _write_cifar_pickles(tmp_path / "p" / "cifar-10-batches-py")
    bad = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": _TouchesAFile(marker)}
    (tmp_path / "p" / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps(bad))
    src = tmp_path / "p"
    if archive:
        src = tmp_path / "p.tar.gz"
        with tarfile.open(src, "w:gz") as tf:
            tf.add(tmp_path / "p" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(DatasetError, match=r"refused to load io\.open"):
        load_dataset(src, cache_dir=tmp_path / "cache")
    assert not marker.exists()


def test_python2_style_pickles_still_load(tmp_path):
    """Protocol 2 (what CIFAR-10's Python 2 pickles use) with NumPy arrays and bytes keys."""
    x, y, _, _ = _write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    for p in (tmp_path / "cifar-10-batches-py").iterdir():
        p.write_bytes(pickle.dumps(pickle.loads(p.read_bytes()), protocol=2))
    ds = load_dataset(tmp_path / "cifar-10-batches-py")
    assert np.array_equal(ds.x_train, x) and np.array_equal(ds.y_train, y)


def test_fingerprint_sees_every_image(tmp_path):
    """Replacing two images of an .npz under the same path must change the cache key."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(200, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 3, size=200)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y)
    before = datasets.dataset_fingerprint(load_dataset(path))
    x[[5, 77]] = 255 - x[[5, 77]]  # rows a 1-in-64 sample would skip
    np.savez(path, x_train=x, y_train=y)
    assert datasets.dataset_fingerprint(load_dataset(path)) != before


def test_a_small_tree_that_decodes_slowly_is_cached_too(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / c / "0.png")
    cache = tmp_path / "cache"
    load_dataset(str(root), cache_dir=cache)
    assert not list(cache.rglob("*.npz"))  # quick to decode: no cache file
    monkeypatch.setattr(datasets.images, "_CACHE_MIN_SECONDS", 0.0)  # as if each photo took seconds
    first = load_dataset(str(root), cache_dir=cache)
    (cached,) = cache.rglob("*.npz")
    monkeypatch.setattr(datasets.images, "_decode_images", None)  # a second load must not decode
    np.testing.assert_array_equal(load_dataset(str(root), cache_dir=cache).x_train, first.x_train)
    assert cached.is_file()
