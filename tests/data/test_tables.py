"""Tables and text as data: CSV/TSV loading, kind detection, encoding, bad input."""
from pathlib import Path

import numpy as np
import pytest


from labelnext import data as datasets  # noqa: E402
from labelnext.data import DatasetError, load_dataset  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
REVIEW = "a long and winding review of the film that says quite a lot"


def _csv(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_table_with_categorical_and_missing_values(tmp_path):
    rows = ["height,colour,weight,label"] + [f"{i},{'red' if i % 2 else 'blue'},{'' if i == 3 else i * 2},{'ab'[i % 2]}"
                                             for i in range(10)]
    ds = load_dataset(_csv(tmp_path / "t.csv", "\n".join(rows)), holdout=False)
    assert ds.kind == "tabular" and ds.class_names == ["a", "b"]
    assert ds.feature_names == ["height", "weight", "colour=blue", "colour=red"]
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape == (10, 4)
    assert ds.x_train[3, 1] == np.median([i * 2 for i in range(10) if i != 3])  # imputed with the median
    assert ds.x_train[1].tolist() == [1, 2, 0, 1]
    assert any("imputed 1 missing values" in n for n in ds.notes)
    assert ds.y_train.tolist() == [i % 2 for i in range(10)]


def test_label_column_defaults(tmp_path):
    # The only string column of a numeric table is the class (UCI style, class first).
    ds = load_dataset(_csv(tmp_path / "u.csv", "Letter,x1,x2\nA,1,2\nB,3,4\nA,5,6\n"), holdout=False)
    assert ds.class_names == ["A", "B"] and ds.feature_names == ["x1", "x2"]
    # No header, all numeric: the last column; numeric classes sort as numbers.
    ds = load_dataset(_csv(tmp_path / "n.csv", "1,2,10\n3,4,2\n5,6,10\n"), holdout=False)
    assert ds.class_names == ["2", "10"] and ds.y_train.tolist() == [1, 0, 1] and ds.x_train.shape == (3, 2)
    ds = load_dataset(tmp_path / "u.csv", label_column="x2", holdout=False)
    assert ds.class_names == ["2", "4", "6"]


def test_unlabeled_rows_and_test_file(tmp_path):
    train = _csv(tmp_path / "train.csv", "f,class\n1,x\n2,\n3,y\n4,x\n")
    test = _csv(tmp_path / "test.csv", "f,class\n5,y\n6,x\n")
    ds = load_dataset(train, test=test)
    assert ds.y_train.tolist() == [0, -1, 1, 0] and ds.y_test.tolist() == [1, 0]
    assert ds.x_test[:, 0].tolist() == [5, 6]


def test_holdout_is_stratified_and_fixed(tmp_path):
    rows = ["f,class"] + [f"{i},{'abc'[i % 3]}" for i in range(60)]
    path = _csv(tmp_path / "h.csv", "\n".join(rows))
    a, b = load_dataset(path), load_dataset(path)
    assert a.x_test.shape == (12, 1) and np.bincount(a.y_test).tolist() == [4, 4, 4]
    assert np.array_equal(a.x_test, b.x_test) and len(a.x_train) == 48
    assert any("held-out split drawn: 12 of 60" in n for n in a.notes)


def test_text_csv_detected(tmp_path):
    rows = ["id,review,sentiment"] + [f'{i},"{REVIEW} number {i}",{"pos" if i % 2 else "neg"}' for i in range(6)]
    ds = load_dataset(_csv(tmp_path / "r.csv", "\n".join(rows)), holdout=False)
    assert ds.kind == "text" and ds.class_names == ["neg", "pos"]
    assert ds.x_train.dtype == object and ds.x_train[1] == f"{REVIEW} number 1"
    short = load_dataset(_csv(tmp_path / "s.tsv", "word\tlabel\nhi\ta\nyo\tb\n"), kind="text", holdout=False)
    assert short.kind == "text" and short.x_train.tolist() == ["hi", "yo"]
    assert load_dataset(tmp_path / "r.csv", kind="tabular", label_column="sentiment", holdout=False).kind == "tabular"


def test_text_tree_aclimdb_layout(tmp_path):
    for split, cls, n in [("train", "pos", 3), ("train", "neg", 2), ("train", "unsup", 2), ("test", "pos", 1),
                          ("test", "neg", 1)]:
        (tmp_path / "aclImdb" / split / cls).mkdir(parents=True)
        for i in range(n):
            (tmp_path / "aclImdb" / split / cls / f"{i}_7.txt").write_text(f"{cls} {split} {i}")
    ds = load_dataset(tmp_path / "aclImdb")
    assert ds.kind == "text" and ds.class_names == ["neg", "pos"]
    assert sorted(ds.y_train.tolist()) == [-1, -1, 0, 0, 1, 1, 1] and sorted(ds.y_test.tolist()) == [0, 1]
    assert sorted(ds.x_test.tolist()) == ["neg test 0", "pos test 0"]
    before = datasets.dataset_fingerprint(ds)
    (tmp_path / "aclImdb" / "train" / "pos" / "0_7.txt").write_text("changed")
    assert datasets.dataset_fingerprint(load_dataset(tmp_path / "aclImdb")) != before


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,x\n2,x\n", r"class column 'b' has a single class \['x'\]"),
    ("f,class\n1,\n2,\n", r"class column 'class' is empty"),
    ("f,class\n1,a\n2,b,3\n", r"row 3 has 3 fields but row 1 has 2: ragged rows"),
    ("f,g,class\n1,,a\n2,,b\n", r"feature column 'g' has no values \(all missing\)"),
    ("class\na\nb\n", r"has no feature column besides the class column"),
])
def test_bad_tables_one_line(tmp_path, content, message):
    path = _csv(tmp_path / "bad.csv", content)
    with pytest.raises(DatasetError, match=f"^bad.csv: {message}"):
        load_dataset(path)


def test_non_utf8_and_unknown_column(tmp_path):
    path = _csv(tmp_path / "latin.csv", "f,class\n1,caf\xe9\n2,b\n", encoding="latin-1")
    with pytest.raises(DatasetError, match=r"^latin.csv: is not UTF-8 text \(byte 13"):
        load_dataset(path)
    ok = _csv(tmp_path / "ok.csv", "\ufefff,class\n1,a\n2,b\n")  # Excel's BOM is fine
    assert load_dataset(ok, holdout=False).feature_names == ["f"]
    with pytest.raises(DatasetError, match=r"class column 'nope' is not a column; columns are \['f', 'class'\]"):
        load_dataset(ok, label_column="nope")
    with pytest.raises(DatasetError, match=r"kind must be one of"):
        load_dataset(ok, kind="audio")


def test_test_file_with_an_unknown_class(tmp_path):
    train = _csv(tmp_path / "a.csv", "f,class\n1,x\n2,y\n")
    test = _csv(tmp_path / "b.csv", "f,class\n1,z\n")
    with pytest.raises(DatasetError, match=r"^b.csv: class column 'class' has classes \['z'\] not in"):
        load_dataset(train, test=test)


def test_letter_recognition():
    path = SHARED / "letter-recognition.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    ds = load_dataset(path)
    assert ds.kind == "tabular" and ds.n_classes == 26 and ds.class_names[0] == "A"
    assert ds.x_train.shape[1] == 16 and len(ds.x_train) + len(ds.x_test) == 20_000
    assert len(ds.x_test) == pytest.approx(4000, abs=26)


def test_imdb_sample():
    path = SHARED / "imdb-reviews-3k.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    ds = load_dataset(path)
    assert ds.kind == "text" and ds.class_names == ["negative", "positive"]
    assert len(ds.x_train) + len(ds.x_test) == 3180 and "text column 'review'" in ds.notes


def test_parquet_table(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    pd.DataFrame({"a": [1.0, 2.0, None, 4.0], "kind": ["x", "y", "x", "y"]}).to_parquet(tmp_path / "t.parquet")
    ds = load_dataset(tmp_path / "t.parquet", label_column="kind", holdout=False)
    assert ds.kind == "tabular" and ds.name == "t" and ds.x_train[:, 0].tolist() == [1, 2, 2, 4]


def _leaky_table(path, n=60):
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], n // 3)  # written class by class, as many real exports are
    rows = ["row_id,const,x1,x2,label"] + [f"{1000 + i},7,{rng.normal():.3f},{rng.normal():.3f},{c}"
                                           for i, c in enumerate(y)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_leaking_and_junk_columns_are_named_with_the_reason(tmp_path):
    ds = load_dataset(str(_leaky_table(tmp_path / "t.csv")))
    warnings = [n for n in ds.notes if n.startswith("warning:")]
    assert len(warnings) == 2, warnings
    assert "'row_id': unique integers in every row (an ID?); values monotone in row order" in warnings[0]
    assert "sorting by it puts the 3 classes in 3 blocks" in warnings[0]
    assert "'const': constant" in warnings[1]
    kept = load_dataset(str(tmp_path / "t.csv"), drop_columns="row_id,const")
    assert kept.feature_names == ["x1", "x2"] and not [n for n in kept.notes if n.startswith("warning:")]
    assert "dropped columns ['row_id', 'const']" in kept.notes
    assert load_dataset(str(tmp_path / "t.csv"), keep_columns=["x2"]).feature_names == ["x2"]


@pytest.mark.parametrize("kwargs, match", [
    ({"drop_columns": "nope"}, r"--drop-columns names 'nope', which is not a column; columns are \['row_id'"),
    ({"keep_columns": "label"}, "--keep-columns names the class column 'label'"),
    ({"drop_columns": "x1", "keep_columns": "x2"}, "not both"),
])
def test_bad_column_choices_are_one_line(tmp_path, kwargs, match):
    with pytest.raises(DatasetError, match=match):
        load_dataset(str(_leaky_table(tmp_path / "t.csv")), **kwargs)


@pytest.mark.skipif(not (SHARED / "letter-recognition.csv").is_file(), reason="needs ../shared/data")
def test_no_leak_warning_on_a_real_table():
    ds = load_dataset(str(SHARED / "letter-recognition.csv"))
    assert not [n for n in ds.notes if n.startswith("warning:")]
