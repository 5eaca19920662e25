"""The project's label store: every label a person (or a simulation) gave, in one SQLite file.

A label is never lost. ``labels`` is an append-only history: importing an item again
with another class adds a row, and the NEWEST row per item (highest ``id``) is the
item's current label. ``rounds`` records each select-label-retrain round and ``meta``
the data set the store belongs to (``n_items``, ``class_names``, schema version), so a
store opened against another data set is refused instead of silently mixing labels.

Writes are SQLite transactions started with ``BEGIN IMMEDIATE`` on a WAL-mode database:
two processes writing at once queue on the write lock (``busy_timeout``) and lose
nothing, readers never block writers, and a process killed in the middle of a write
leaves the store exactly as it was before that write (SQLite's rollback on recovery).
Every argument is checked before the transaction starts, so refused input writes nothing.

Undo (:meth:`LabelStore.remove`) DELETES the undone row rather than appending a
tombstone: an undo is a retraction, so the item's previous label (a seed label, an
earlier import) becomes current again, which a tombstone meaning "unlabeled" could not
express. ``id`` is ``AUTOINCREMENT``, so a deleted id is never reused and "newest" stays
the insertion order.
"""
import contextlib
import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from labelnext.utils.checks import check_choice, check_class_names, check_int, check_items, class_ids
from labelnext.io.files import _json_default

SCHEMA_VERSION = 1
SOURCES = ("seed", "csv", "web", "labelstudio", "oracle")
# Seconds a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_S = 60.0

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item INTEGER NOT NULL CHECK (item >= 0),
    class INTEGER NOT NULL CHECK (class >= 0),
    source TEXT NOT NULL CHECK (source IN ({", ".join(repr(s) for s in SOURCES)})),
    round INTEGER NOT NULL CHECK (round >= 0),
    annotator TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_item ON labels (item, id);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY CHECK (round >= 0), started_at TEXT NOT NULL, finished_at TEXT,
    strategy TEXT, n_labeled INTEGER, metrics TEXT
);
"""

_ROW = "SELECT id, item, class, source, round, annotator, created_at FROM labels"
# The newest row per item; labels_item makes the MAX(id) per item an index walk.
_CURRENT = "SELECT item, class FROM labels WHERE id IN (SELECT MAX(id) FROM labels GROUP BY item) ORDER BY item"


def _now():
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _check_write_args(source, round, annotator):
    """The provenance every written label carries: returns the checked round."""
    check_choice(source, "source", SOURCES)
    if annotator is not None and not isinstance(annotator, str):
        raise ValueError(f"annotator must be a string or None, got {annotator!r}")
    return check_int(round, "round", low=0)


class LabelConflictError(ValueError):
    """An item's label changed since the caller read it (see :meth:`LabelStore.label_item`)."""

    def __init__(self, item, current):
        self.item, self.current = item, current
        who = "nobody (its labels were undone)" if current is None else (
            f"{current['annotator'] or current['source']!r} as {current['class_name']!r} at {current['created_at']}")
        super().__init__(f"item {item} was labeled by someone else since you loaded it: now {who}")


class UndoRefusedError(ValueError):
    """An undo named a label the caller may not take back; ``reason`` is 'missing', 'round' or 'annotator'."""

    def __init__(self, reason, message):
        self.reason = reason
        super().__init__(message)


class LabelStore:
    """SQLite label store of one data set: label history, current labels, rounds.

    Parameters
    ----------
    path : str or Path
        The SQLite file (created with its schema on first open; its folder must exist).
    n_items : int
        Number of items in the data set; labels name items by dataset index in
        ``[0, n_items)``.
    class_names : list of str
        The classes, in class-id order.

    Raises
    ------
    ValueError
        When the file exists but records another ``n_items`` or ``class_names``, is not
        a label store, or cannot be opened (one line naming the path and the cause).

    Notes
    -----
    One object holds one connection guarded by a lock, so threads of one process (a web
    server's workers) may share it; processes each open their own. Use it as a context
    manager or call :meth:`close`.
    """

    def __init__(self, path, *, n_items, class_names):
        self.path = Path(path)
        self.n_items = check_int(n_items, "n_items", low=1)
        self.class_names = check_class_names(class_names)
        self._lock = threading.Lock()
        try:
            # isolation_level=None: no implicit transactions; every write below opens its
            # own BEGIN IMMEDIATE so the write lock is taken before anything is read.
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed label survives a power cut, not only a process crash;
            # labels are a person's work and a commit costs one fsync.
            self._conn.execute("PRAGMA synchronous = FULL")
            self._open_schema()
        except sqlite3.Error as e:
            self._close_quietly()
            raise ValueError(f"label store {str(self.path)!r} cannot be opened: {e}") from None
        except ValueError:
            self._close_quietly()
            raise

    # ------------------------------------------------------------------ plumbing
    def _close_quietly(self):
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None

    def close(self):
        """Close the connection (idempotent)."""
        with self._lock:
            self._close_quietly()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"LabelStore({str(self.path)!r}, n_items={self.n_items}, class_names={self.class_names!r})"

    def _write(self, fn):
        """Run ``fn(conn)`` in one BEGIN IMMEDIATE transaction: all of it or nothing."""
        with self._lock, self._os_errors():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def _read(self, sql, params=()):
        with self._lock, self._os_errors():
            return self._connection().execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _os_errors(self):
        """A full disk, a read-only file, a lock held past BUSY_TIMEOUT_S: one line naming the store."""
        try:
            yield
        except sqlite3.Error as e:
            raise ValueError(f"label store {str(self.path)!r}: {e}") from None

    def _connection(self):
        if self._conn is None:
            raise ValueError(f"label store {str(self.path)!r} is closed")
        return self._conn

    def _open_schema(self):
        def setup(conn):
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables - {"sqlite_sequence"} and "meta" not in tables:
                raise ValueError(
                    f"label store {str(self.path)!r} is an SQLite file but not a label store (tables: {sorted(tables)})"
                )
            # One statement at a time: executescript() would COMMIT the open transaction first.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            if not meta:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("schema_version", str(SCHEMA_VERSION)),
                        ("n_items", str(self.n_items)),
                        ("class_names", json.dumps(self.class_names)),
                    ],
                )
                return
            if int(meta.get("schema_version", -1)) != SCHEMA_VERSION:
                raise ValueError(
                    f"label store {str(self.path)!r} has schema version {meta.get('schema_version')}, "
                    f"this code reads version {SCHEMA_VERSION}"
                )
            if int(meta["n_items"]) != self.n_items:
                raise ValueError(
                    f"label store {str(self.path)!r} belongs to a data set of n_items={meta['n_items']}, "
                    f"got n_items={self.n_items}"
                )
            stored = json.loads(meta["class_names"])
            if stored != self.class_names:
                raise ValueError(
                    f"label store {str(self.path)!r} records class_names={stored}, got class_names={self.class_names}"
                )

        self._write(setup)

    # ------------------------------------------------------------------ labels
    def add(self, items, classes, *, source, round, annotator=None):
        """Append labels in one transaction; every value is checked before anything is written.

        Parameters
        ----------
        items : array-like of shape (n,), int
            Dataset indices in ``[0, n_items)``.
        classes : array-like of shape (n,)
            Class ids (int) or class names (str). Within one call a later row of the
            same item is newer, so it wins.
        source : {'seed', 'csv', 'web', 'labelstudio', 'oracle'}
            Who or what gave the labels.
        round : int
            The round (>= 0) in which the items were labeled.
        annotator : str, optional
            Who labeled them.

        Returns
        -------
        n_written : int
        """
        round = _check_write_args(source, round, annotator)
        items = check_items(items, self.n_items)
        ids = class_ids(classes, self.class_names)
        if ids.shape != items.shape:
            raise ValueError(f"items and classes must have the same length, got {items.size} and {ids.size}")
        if not items.size:
            return 0
        now = _now()
        rows = zip(items.tolist(), ids.tolist(), [source] * items.size, [round] * items.size,
                   [annotator] * items.size, [now] * items.size)
        self._write(lambda conn: conn.executemany(
            "INSERT INTO labels (item, class, source, round, annotator, created_at) VALUES (?, ?, ?, ?, ?, ?)", rows
        ))
        return int(items.size)

    def current(self):
        """The current (newest) label of every labeled item.

        Returns
        -------
        items : ndarray of shape (n_labeled,), int64
            Labeled dataset indices, ascending.
        classes : ndarray of shape (n_labeled,), int64
        """
        rows = np.array(self._read(_CURRENT), dtype=np.int64).reshape(-1, 2)
        items, classes = rows[:, 0].copy(), rows[:, 1].copy()
        # Written only through add/label_item, which check both; anything else was edited outside.
        bad = (items < 0) | (items >= self.n_items) | (classes < 0) | (classes >= len(self.class_names))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"label store {str(self.path)!r} holds item {items[i]} with class id {classes[i]}, outside "
                             f"items 0-{self.n_items - 1} and class ids 0-{len(self.class_names) - 1}: it was edited "
                             "outside labelnext; restore it from a backup")
        return items, classes

    def label_array(self):
        """Current labels as one vector over the data set, -1 where unlabeled.

        Returns
        -------
        labels : ndarray of shape (n_items,), int64
        """
        items, classes = self.current()
        labels = np.full(self.n_items, -1, dtype=np.int64)
        labels[items] = classes
        return labels

    def labeled_mask(self):
        """ndarray of shape (n_items,), bool: True where the item has a label."""
        return self.label_array() >= 0

    def counts_per_class(self):
        """Current labels per class: ndarray of shape (n_classes,), int64."""
        return np.bincount(self.current()[1], minlength=len(self.class_names)).astype(np.int64)

    def history(self, item):
        """Every label ``item`` was given, oldest first (the last one is current).

        Returns
        -------
        list of dict with ``id``, ``item``, ``class``, ``class_name``, ``source``,
        ``round``, ``annotator``, ``created_at``.
        """
        item = check_int(item, "item", low=0, high=self.n_items - 1)
        rows = self._read(f"{_ROW} WHERE item = ? ORDER BY id", (item,))
        return [self._row(r) for r in rows]

    def newest(self, items):
        """The current label row of each of ``items`` that has one, in one query per 500 items
        (the labeling page polls this for its whole queue).

        Returns
        -------
        dict of item -> dict, each as :meth:`history`'s last row; unlabeled items are absent.
        """
        items = [check_int(i, "item", low=0, high=self.n_items - 1) for i in items]
        out = {}
        for start in range(0, len(items), 500):  # below SQLite's bound on query parameters
            chunk = items[start:start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"{_ROW} WHERE id IN (SELECT MAX(id) FROM labels WHERE item IN ({marks}) GROUP BY item)"
            out.update((r[1], self._row(r)) for r in self._read(sql, chunk))
        return out

    def label_item(self, item, cls, *, expect_id, source, round, annotator=None):
        """Label one item unless someone else labeled it since the caller looked (compare-and-set).

        For labelers working at once (two browsers on one round): the label is written
        only if the item's newest row is still ``expect_id`` (the ``id`` the caller saw,
        None when it saw the item unlabeled), checked in the same transaction.
        ``cls`` is a class id or name; ``source``, ``round``, ``annotator`` as in :meth:`add`.

        Returns
        -------
        row : dict
            The new row, as in :meth:`history`; its ``id`` is the next ``expect_id``.

        Raises
        ------
        LabelConflictError
            When the item's newest row is another; ``.current`` holds that row (None
            if the item's labels were undone). Nothing is written.
        """
        if expect_id is not None:
            expect_id = check_int(expect_id, "expect_id", low=1)
        round = _check_write_args(source, round, annotator)
        item = int(check_items([item], self.n_items, "item")[0])
        cls = int(class_ids([cls], self.class_names, "cls")[0])

        def set_label(conn):
            newest = conn.execute(f"{_ROW} WHERE item = ? ORDER BY id DESC LIMIT 1", (item,)).fetchone()
            if (newest[0] if newest else None) != expect_id:
                raise LabelConflictError(item, None if newest is None else self._row(newest))
            cur = conn.execute(
                "INSERT INTO labels (item, class, source, round, annotator, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (item, cls, source, round, annotator, _now()),
            )
            return conn.execute(f"{_ROW} WHERE id = ?", (cur.lastrowid,)).fetchone()

        return self._row(self._write(set_label))

    def n_rows(self):
        """Number of label rows, history included."""
        return self._read("SELECT COUNT(*) FROM labels")[0][0]

    def remove(self, label_id, *, source, round, annotator=None, override=False):
        """Undo one label: delete row ``label_id``; the item's previous label is current again.

        The row must still be its item's current label (what the caller saw: its id is its
        version), written by ``source`` in ``round`` (an earlier round's label trained that
        round's model, so it is relabeled, not undone), and by ``annotator`` unless
        ``override`` (``None`` is a labeler without a name, not a wildcard).

        Returns
        -------
        removed : dict
            The deleted row (as in :meth:`history`).

        Raises
        ------
        LabelConflictError
            The item was labeled again since (``current`` holds the newer row).
        UndoRefusedError
            No such label of ``source``, another round's, or another labeler's.
        """
        _check_write_args(source, round, annotator)
        label_id = check_int(label_id, "id", low=1)

        def undo(conn):
            row = conn.execute(f"{_ROW} WHERE id = ? AND source = ?", (label_id, source)).fetchone()
            if row is None:
                raise UndoRefusedError("missing", f"label {label_id} is not a {source} label in the store "
                                                  "(already undone?)")
            newest = conn.execute(f"{_ROW} WHERE item = ? ORDER BY id DESC LIMIT 1", (row[1],)).fetchone()
            if newest[0] != row[0]:
                raise LabelConflictError(row[1], self._row(newest))
            if row[4] != round:
                raise UndoRefusedError("round", f"label {label_id} was given in round {row[4]}, not in the current "
                                                f"round {round}: label item {row[1]} again instead")
            if row[5] != annotator and not override:
                raise UndoRefusedError("annotator", f"label {label_id} was given by {row[5] or 'a labeler without a name'}"
                                                    f", not by {annotator or 'a labeler without a name'}: only they can"
                                                    " undo it")
            conn.execute("DELETE FROM labels WHERE id = ?", (row[0],))
            return row

        return self._row(self._write(undo))

    def _row(self, r):
        return {
            "id": r[0], "item": r[1], "class": r[2], "class_name": self.class_names[r[2]],
            "source": r[3], "round": r[4], "annotator": r[5], "created_at": r[6],
        }

    # ------------------------------------------------------------------ rounds
    def start_round(self, *, strategy, round=None):
        """Record the start of a round and return its number.

        Parameters
        ----------
        strategy : str
            The selection strategy the round uses.
        round : int, optional
            The round number; by default the next one (0 for the first). A round that
            was started but never finished (a crashed run) is started again rather
            than skipped: passing its number, or None when it is the latest, restarts it.

        Returns
        -------
        round : int
        """
        if not isinstance(strategy, str) or not strategy:
            raise ValueError(f"strategy must be a non-empty string, got {strategy!r}")
        if round is not None:
            round = check_int(round, "round", low=0)

        def start(conn):
            last = conn.execute("SELECT round, finished_at FROM rounds ORDER BY round DESC LIMIT 1").fetchone()
            following = 0 if last is None else (last[0] if last[1] is None else last[0] + 1)
            number = following if round is None else round
            done = conn.execute("SELECT finished_at FROM rounds WHERE round = ?", (number,)).fetchone()
            if done is not None and done[0] is not None:
                raise ValueError(f"round {number} is already finished; the next round is {following}")
            conn.execute(
                "INSERT OR REPLACE INTO rounds (round, started_at, strategy) VALUES (?, ?, ?)",
                (number, _now(), strategy),
            )
            return number

        return self._write(start)

    def finish_round(self, round, *, n_labeled, metrics=None):
        """Record the end of a started round with its label count and metrics.

        Parameters
        ----------
        round : int
            A started, unfinished round.
        n_labeled : int
            Labels the round trained on.
        metrics : dict, optional
            JSON-serialisable results (accuracy, macro-F1, ...); NumPy scalars are converted.
        """
        round = check_int(round, "round", low=0)
        n_labeled = check_int(n_labeled, "n_labeled", low=0)
        if metrics is not None and not isinstance(metrics, dict):
            raise ValueError(f"metrics must be a dict or None, got {type(metrics).__name__}")
        try:
            text = json.dumps(metrics or {}, default=_json_default, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"metrics must be JSON-serialisable with finite numbers: {e}") from None

        def finish(conn):
            row = conn.execute("SELECT finished_at FROM rounds WHERE round = ?", (round,)).fetchone()
            if row is None:
                raise ValueError(f"round {round} was never started; call start_round first")
            if row[0] is not None:
                raise ValueError(f"round {round} is already finished (at {row[0]})")
            conn.execute(
                "UPDATE rounds SET finished_at = ?, n_labeled = ?, metrics = ? WHERE round = ?",
                (_now(), n_labeled, text, round),
            )

        self._write(finish)

    def list_rounds(self):
        """Every round, oldest first.

        Returns
        -------
        list of dict with ``round``, ``started_at``, ``finished_at`` (None while
        running), ``strategy``, ``n_labeled`` and ``metrics`` (dict).
        """
        rows = self._read("SELECT round, started_at, finished_at, strategy, n_labeled, metrics FROM rounds ORDER BY round")
        return [
            {"round": r[0], "started_at": r[1], "finished_at": r[2], "strategy": r[3], "n_labeled": r[4],
             "metrics": json.loads(r[5]) if r[5] else {}}
            for r in rows
        ]
