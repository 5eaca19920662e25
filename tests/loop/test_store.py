"""The SQLite label store: history and newest-wins, all-or-nothing writes, concurrency, crashes."""
import multiprocessing
import os
import signal
import sqlite3
import time

import numpy as np
import pytest

from labelnext.loop.store import LabelConflictError, LabelStore, UndoRefusedError

CLASSES = ["cat", "dog", "bird"]
N = 1000


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite", n_items=N, class_names=CLASSES) as s:
        yield s


def _open(path):
    return LabelStore(path, n_items=N, class_names=CLASSES)


# --------------------------------------------------------------------------- labels
def test_add_current_and_history_newest_wins(store):
    assert store.add([5, 7], ["cat", 1], source="seed", round=0) == 2
    assert store.add([5, 9], ["bird", "dog"], source="csv", round=1, annotator="ana") == 2
    items, classes = store.current()
    np.testing.assert_array_equal(items, [5, 7, 9])
    np.testing.assert_array_equal(classes, [2, 1, 1])
    hist = store.history(5)
    assert [(h["class_name"], h["source"], h["round"], h["annotator"]) for h in hist] == [
        ("cat", "seed", 0, None), ("bird", "csv", 1, "ana")]
    assert store.n_rows() == 4
    np.testing.assert_array_equal(store.counts_per_class(), [0, 2, 1])
    mask = store.labeled_mask()
    assert mask.shape == (N,) and np.flatnonzero(mask).tolist() == [5, 7, 9]
    labels = store.label_array()
    assert labels[5] == 2 and labels[0] == -1


def test_newest_is_each_items_last_history_row_in_few_queries(store):
    store.add(list(range(600)), [i % 3 for i in range(600)], source="seed", round=0)
    store.add([5, 599], ["bird", "cat"], source="csv", round=1, annotator="ana")
    asked = [5, 599, 3, 800, 42]  # 800 has no label; 599 sits past the first chunk of 500
    newest = store.newest(asked + list(range(100, 600)))
    for item in asked:
        history = store.history(item)
        assert newest.get(item) == (history[-1] if history else None)
    assert newest[5]["class_name"] == "bird" and newest[599]["annotator"] == "ana"
    assert set(newest) == set(range(100, 600)) | {5, 3, 42}
    with pytest.raises(ValueError, match="item must be an integer"):
        store.newest([N])


def test_later_row_of_one_call_wins(store):
    store.add(np.array([3, 3]), np.array([0, 2]), source="web", round=2)
    assert store.label_array()[3] == 2
    assert len(store.history(3)) == 2


@pytest.mark.parametrize("items, classes, kwargs, match", [
    ([1, 2, N], [0, 0, 0], {}, r"items\[2\] = 1000 is not a dataset index; allowed: 0-999"),
    ([1, -1], [0, 0], {}, r"items\[1\] = -1 is not a dataset index"),
    ([1.0, 2.0], [0, 0], {}, r"items must be integer dataset indices, got dtype float64"),
    ([1, True], [0, 0], {}, r"items\[1\] = True is not a dataset index \(an integer\)"),
    ([1, 2, 3], ["cat", "kat", "dog"], {}, r"classes\[1\] = 'kat' is not a class; allowed: \['cat', 'dog', 'bird'\]"),
    ([1, 2], [0, 3], {}, r"classes\[1\] = 3 is not a class"),
    ([1, 2], [0, True], {}, r"classes\[1\] = True is not a class"),
    ([1, 2], [0], {}, r"items and classes must have the same length, got 2 and 1"),
    ([1], [0], {"source": "excel"}, r"source must be one of \['seed', 'csv', 'web', 'labelstudio', 'oracle'\], got 'excel'"),
    ([1], [0], {"round": -1}, r"round must be an integer >= 0, got -1"),
    ([1], [0], {"annotator": 7}, r"annotator must be a string or None, got 7"),
])
def test_refused_input_writes_nothing(store, items, classes, kwargs, match):
    store.add([4], [0], source="seed", round=0)
    args = {"source": "csv", "round": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        store.add(items, classes, **args)
    assert store.n_rows() == 1
    assert store.history(4)[0]["class"] == 0


def test_undo_deletes_the_named_row_and_restores_the_previous_label(store):
    store.add([8], ["cat"], source="seed", round=0)
    dog = store.label_item(8, "dog", expect_id=store.history(8)[-1]["id"], source="web", round=1, annotator="ana")
    store.add([9], ["bird"], source="web", round=1, annotator="bob")
    removed = store.remove(dog["id"], source="web", round=1, annotator="ana")
    assert (removed["item"], removed["class_name"], removed["annotator"]) == (8, "dog", "ana")
    labels = store.label_array()
    assert labels[8] == 0 and labels[9] == 2  # ana's undo left bob's label alone
    with pytest.raises(UndoRefusedError, match="is not a web label in the store"):
        store.remove(dog["id"], source="web", round=1, annotator="ana")
    assert store.n_rows() == 2
    # A deleted id is never reused: a new row is still the newest.
    store.add([8], ["bird"], source="web", round=1, annotator="ana")
    assert store.history(8)[-1]["id"] > removed["id"]


def test_undo_is_refused_for_another_round_another_labeler_or_a_changed_item(store):
    ana = store.label_item(4, "cat", expect_id=None, source="web", round=1, annotator="ana")
    with pytest.raises(UndoRefusedError, match="given in round 1, not in the current round 2") as e:
        store.remove(ana["id"], source="web", round=2, annotator="ana")
    assert e.value.reason == "round"
    for who in ("bob", None):
        with pytest.raises(UndoRefusedError, match="given by ana, not by .*only they can undo it"):
            store.remove(ana["id"], source="web", round=1, annotator=who)
    bob = store.label_item(4, "dog", expect_id=ana["id"], source="web", round=1, annotator="bob")
    with pytest.raises(LabelConflictError, match="now 'bob' as 'dog'"):
        store.remove(ana["id"], source="web", round=1, annotator="ana")
    assert store.remove(bob["id"], source="web", round=1, annotator="ana", override=True)["id"] == bob["id"]
    assert store.n_rows() == 1


def test_labels_survive_reopening(tmp_path):
    path = tmp_path / "labels.sqlite"
    with _open(path) as s:
        s.add([1, 2], [0, 1], source="csv", round=0)
    with _open(path) as s:
        np.testing.assert_array_equal(s.current()[0], [1, 2])


# --------------------------------------------------------------------------- opening
@pytest.mark.parametrize("kwargs, match", [
    ({"n_items": N, "class_names": ["cat", "dog", "fish"]},
     r"records class_names=\['cat', 'dog', 'bird'\], got class_names=\['cat', 'dog', 'fish'\]"),
    ({"n_items": N + 1, "class_names": CLASSES}, r"belongs to a data set of n_items=1000, got n_items=1001"),
])
def test_reopening_with_another_data_set_is_refused(tmp_path, kwargs, match):
    path = tmp_path / "labels.sqlite"
    with _open(path) as s:
        s.add([1], [0], source="csv", round=0)
    with pytest.raises(ValueError, match=match):
        LabelStore(path, **kwargs)
    with _open(path) as s:
        assert s.n_rows() == 1


@pytest.mark.parametrize("class_names, match", [
    (["cat"], r"class_names must be a list of at least two non-empty strings"),
    (["cat", "cat"], r"class_names must be distinct; 'cat' appears more than once"),
    ("catdog", r"class_names must be a list of class-name strings"),
    (["cat", ""], r"at least two non-empty strings"),
])
def test_bad_class_names_refused(tmp_path, class_names, match):
    with pytest.raises(ValueError, match=match):
        LabelStore(tmp_path / "l.sqlite", n_items=5, class_names=class_names)


def test_a_file_that_is_not_a_label_store_is_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match=r"is an SQLite file but not a label store \(tables: \['people'\]\)"):
        _open(other)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match=r"junk.sqlite' cannot be opened: file is not a database"):
        _open(junk)
    with pytest.raises(ValueError, match=r"cannot be opened: unable to open database file"):
        _open(tmp_path / "missing-folder" / "labels.sqlite")


def test_closed_store_refuses_use(tmp_path):
    s = _open(tmp_path / "labels.sqlite")
    s.close()
    with pytest.raises(ValueError, match=r"is closed"):
        s.current()


# --------------------------------------------------------------------------- rounds
def test_rounds_bookkeeping(store):
    assert store.start_round(strategy="margin") == 0
    store.finish_round(0, n_labeled=20, metrics={"accuracy": np.float32(0.5), "per_class": np.array([1, 2])})
    assert store.start_round(strategy="entropy") == 1
    # Round 1 crashed before finishing: the next start restarts it instead of skipping to 2.
    assert store.start_round(strategy="typiclust") == 1
    rounds = store.list_rounds()
    assert [(r["round"], r["strategy"], r["n_labeled"], r["finished_at"] is None) for r in rounds] == [
        (0, "margin", 20, False), (1, "typiclust", None, True)]
    assert rounds[0]["metrics"] == {"accuracy": 0.5, "per_class": [1, 2]}


@pytest.mark.parametrize("call, match", [
    (lambda s: s.finish_round(0, n_labeled=5), r"round 0 is already finished"),
    (lambda s: s.finish_round(4, n_labeled=5), r"round 4 was never started; call start_round first"),
    (lambda s: s.start_round(strategy="margin", round=0), r"round 0 is already finished; the next round is 1"),
    (lambda s: s.finish_round(1, n_labeled=-2), r"n_labeled must be an integer >= 0, got -2"),
    (lambda s: s.finish_round(1, n_labeled=2, metrics={"acc": float("nan")}), r"metrics must be JSON-serialisable"),
    (lambda s: s.start_round(strategy=""), r"strategy must be a non-empty string"),
])
def test_round_misuse_refused(store, call, match):
    store.start_round(strategy="margin")
    store.finish_round(0, n_labeled=1)
    store.start_round(strategy="margin")
    with pytest.raises(ValueError, match=match):
        call(store)
    assert [r["finished_at"] is None for r in store.list_rounds()] == [False, True]


# --------------------------------------------------------------------------- processes
def _label_one_by_one(path, annotator, start):
    start.wait(10)
    with _open(path) as s:
        for item in range(200):
            s.add([item], [item % 3], source="web", round=1, annotator=annotator)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "labels.sqlite"
    _open(path).close()
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_label_one_by_one, args=(path, name, start)) for name in ("ana", "bob")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with _open(path) as s:
        assert s.n_rows() == 400
        assert sorted(h["annotator"] for h in s.history(123)) == ["ana", "bob"]
        np.testing.assert_array_equal(s.current()[0], np.arange(200))


def _big_add(path, ready, in_transaction, hang):
    s = _open(path)
    calls = [0]

    def progress():
        # Called every 1000 SQLite instructions: after 200 calls the INSERTs are well under way.
        calls[0] += 1
        if hang and calls[0] == 200:
            in_transaction.value = s._conn.in_transaction
            ready.set()
            time.sleep(60)
        return 0

    s._conn.set_progress_handler(progress, 1000)
    s.add(np.arange(200_000) % N, np.arange(200_000) % 3, source="oracle", round=1)
    ready.set()
    time.sleep(60)


@pytest.mark.parametrize("hang, expected_rows", [(True, 10), (False, 200_010)])
def test_kill_9_during_or_after_a_large_add_leaves_all_or_none(tmp_path, hang, expected_rows):
    path = tmp_path / "labels.sqlite"
    with _open(path) as s:
        s.add(np.arange(10), np.zeros(10, dtype=int), source="seed", round=0)
    ctx = multiprocessing.get_context("fork")
    ready, in_transaction = ctx.Event(), ctx.Value("b", 0)
    child = ctx.Process(target=_big_add, args=(path, ready, in_transaction, hang))
    child.start()
    assert ready.wait(60)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL
    assert bool(in_transaction.value) == hang
    with _open(path) as s:
        assert s.n_rows() == expected_rows
        assert s.history(3)[0]["source"] == "seed"
        # The crashed writer left no lock behind.
        s.add([999], [2], source="csv", round=2)
        assert s.label_array()[999] == 2


# --------------------------------------------------------------------------- labelers at once
def test_label_item_refuses_a_label_someone_else_changed(store):
    first = store.label_item(4, "cat", expect_id=None, source="web", round=1, annotator="ana")
    # bob loaded item 4 while it was unlabeled; ana's label is newer than what he saw.
    with pytest.raises(LabelConflictError, match=r"item 4 was labeled by someone else since you loaded it: now 'ana' as 'cat'"):
        store.label_item(4, "dog", expect_id=None, source="web", round=1, annotator="bob")
    assert store.n_rows() == 1
    second = store.label_item(4, "dog", expect_id=first["id"], source="web", round=1, annotator="bob")
    assert (second["class_name"], second["annotator"]) == ("dog", "bob")
    store.remove(second["id"], source="web", round=1, annotator="bob")
    store.remove(first["id"], source="web", round=1, annotator="ana")
    with pytest.raises(LabelConflictError, match=r"now nobody \(its labels were undone\)"):
        store.label_item(4, 1, expect_id=second["id"], source="web", round=1)


def test_label_item_checks_its_arguments(store):
    with pytest.raises(ValueError, match=r"item\[0\] = 1000 is not a dataset index"):
        store.label_item(N, 0, expect_id=None, source="web", round=1)
    with pytest.raises(ValueError, match=r"cls\[0\] = 'fish' is not a class"):
        store.label_item(1, "fish", expect_id=None, source="web", round=1)
    with pytest.raises(ValueError, match=r"expect_id must be an integer >= 1, got 0"):
        store.label_item(1, 0, expect_id=0, source="web", round=1)
    assert store.n_rows() == 0


def test_database_errors_are_one_line_naming_the_store(tmp_path):
    path = tmp_path / "labels.sqlite"
    with _open(path) as s:
        s.add([1], [0], source="csv", round=0)
    reader = _open(path)
    # Another connection holds the write lock; a short wait then gives up with one line.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    reader._conn.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(ValueError, match=r"labels.sqlite': database is locked"):
        reader.add([2], [1], source="csv", round=0)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert reader.n_rows() == 1
    reader.close()
