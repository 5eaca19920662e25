"""What the labeling page does, without the web: the current round's queue, labels, undo,
skip / not-sure marks, item previews and the next round in the background.

:class:`LabelingSession` wraps one open :class:`project.LabelingProject` and is shared by
every request thread of the server (the label store is thread-safe; the little state kept
here is guarded by one lock). Every write goes straight to the project's label store with
source ``'web'``; nothing is cached that a restart would lose, so a reload or a new server
resumes where the store says the work stands.

Errors a person can cause raise :class:`RequestError` with an HTTP status and one line;
the server turns them into responses. Nothing is written when one is raised.
"""
import io
import math
import numbers
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from labelnext.loop.store import LabelConflictError, UndoRefusedError
from labelnext.loop.project import DEFAULT_STRATEGY
from labelnext.io.files import load_json, save_json
from labelnext.data import DatasetError
from labelnext.data.images import read_images

SOURCE = "web"
FLAGS = ("skip", "unsure")
# skip/unsure marks live beside the store (the store holds class labels only), one file per project.
FLAGS_FILE = "web_flags.json"
ANNOTATOR_MAX = 64
# Progress lines of the background round kept for the page.
LOG_LINES = 50
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class RequestError(ValueError):
    """A request the page cannot honour: ``status`` is the HTTP status, the message one line."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def check_annotator(value, default=None):
    """A labeler's name: None (use ``default``) or 1-64 printable characters."""
    if value is None or value == "":
        return default
    if not isinstance(value, str) or len(value) > ANNOTATOR_MAX or not value.isprintable() or not value.strip():
        raise RequestError(400, f"annotator must be a name of 1-{ANNOTATOR_MAX} printable characters, "
                                f"got {value!r:.80}")
    return value.strip()


def class_keys(class_names):
    """The key that labels each class on the page: ``{class name: '0'..'9'}``.

    A class named by one digit gets that digit (class "0" -> key 0: a person labeling digits
    presses what they see); the other classes take the free keys in keyboard order
    1, 2, ..., 9, 0. Classes beyond ten keys have none (their buttons still work).
    """
    keys = {name: name for name in class_names if len(name) == 1 and name in "0123456789"}
    free = [d for d in "1234567890" if d not in keys]
    for name in class_names:
        if name not in keys and free:
            keys[name] = free.pop(0)
    return {name: keys[name] for name in class_names if name in keys}


def parse_index(value, n_items):
    """A dataset index from a request (JSON number or URL segment); never a path."""
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise RequestError(400, f"index must be a dataset index (an integer 0-{n_items - 1}), got {value!r:.80}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise RequestError(400, f"index must be a dataset index (an integer 0-{n_items - 1}), got {value!r:.80}")
    if not 0 <= value < n_items:
        raise RequestError(404, f"index {value} is not an item of this project; allowed: 0-{n_items - 1}")
    return int(value)


class RoundJob:
    """The next round running in a background thread, as the page sees it."""

    def __init__(self):
        self.state = "idle"  # idle | running | done | failed
        self.log, self.result, self.error = [], None, None
        self.started = self.finished = None

    def as_dict(self):
        now = time.time()
        return {"state": self.state, "log": list(self.log), "result": self.result, "error": self.error,
                "elapsed_s": None if self.started is None else round((self.finished or now) - self.started, 1)}


class LabelingSession:
    """The labeling page's model of one project.

    Parameters
    ----------
    project : project.LabelingProject
        An open project; its data set is loaded once here (previews need it).
    annotator : str, optional
        Name recorded with labels whose request names no annotator.
    """

    def __init__(self, project, *, annotator=None):
        self.project = project
        self.store = project.store
        self.annotator = check_annotator(annotator)
        self.class_names = list(project.class_names)
        self.n_items = int(project.config["n_items"])
        self.data = project.data  # load (and fingerprint-check) before the first request
        self._lock = threading.Lock()
        self._selection = (None, [], {})  # (round, rows, index -> row), re-read when the round changes
        self._flags_path = Path(project.path) / FLAGS_FILE
        self._flags = self._load_flags()
        self.job = RoundJob()

    # ------------------------------------------------------------------ selection
    def current_round(self):
        """The last finished round (its selection is what is labeled), or None."""
        return self.project.last_round()

    def selection(self):
        """``(round, rows)`` of the current round, rows best first (``[]`` before any round)."""
        number = self.current_round()
        with self._lock:
            if self._selection[0] != number:
                rows = [] if number is None else self.project.selection(number)
                self._selection = (number, rows, {r["index"]: r for r in rows})
            return self._selection[0], self._selection[1]

    def _in_selection(self, index):
        number, _ = self.selection()
        if number is None:
            raise RequestError(409, "no round has run yet: run the first round to get a selection")
        if index not in self._selection[2]:
            raise RequestError(404, f"index {index} is not in round {number}'s selection")
        return number

    def state(self):
        """Everything the page shows: the queue with each item's label and mark, counts, the job."""
        number, rows = self.selection()
        flags = self._flags.get(str(number), {}) if number is not None else {}
        newest = self.store.newest([r["index"] for r in rows])
        items = [dict(r, label=newest.get(r["index"]), flag=flags.get(str(r["index"]))) for r in rows]
        counts = self.counts()
        n_done = sum(it["label"] is not None for it in items)
        # The balanced share of the labels the store will hold once this selection is labeled.
        target = math.ceil((sum(counts.values()) + len(items) - n_done) / len(self.class_names))
        return {
            "project": Path(self.project.path).name, "round": number, "kind": self.data.kind,
            "classes": self.class_names, "keys": class_keys(self.class_names), "annotator": self.annotator,
            "items": items,
            "n_selected": len(items), "n_labeled": n_done,
            "counts": counts, "target": target, "job": self.job.as_dict(),
        }

    # ------------------------------------------------------------------ writes
    def label(self, index, cls, *, expect_id, annotator=None):
        """Label one selected item unless someone changed it since the page loaded it.

        Parameters
        ----------
        index : int or str
            Dataset index of an item of the current selection.
        cls : str or int
            Class name or class id.
        expect_id : int or None
            The label row the page showed for this item (None: it showed it unlabeled).

        Returns
        -------
        dict: ``row`` (the new label row) and ``counts`` (labels per class).

        Raises
        ------
        RequestError
            400 / 404 for a bad index, class or expect_id; 409 when another labeler changed
            the item (the error's ``current`` holds their row).
        """
        index = parse_index(index, self.n_items)
        annotator = check_annotator(annotator, self.annotator)
        if isinstance(cls, bool) or not isinstance(cls, (str, numbers.Integral)) or (
                isinstance(cls, str) and cls not in self.class_names) or (
                isinstance(cls, numbers.Integral) and not 0 <= cls < len(self.class_names)):
            raise RequestError(400, f"class {cls!r:.80} is not a class; allowed: {self.class_names} "
                                    f"or ids 0-{len(self.class_names) - 1}")
        if expect_id is not None and (isinstance(expect_id, bool) or not isinstance(expect_id, numbers.Integral)
                                      or expect_id < 1):
            raise RequestError(400, f"expect_id must be the label id the page showed (an integer >= 1) or null, "
                                    f"got {expect_id!r:.80}")
        number = self._in_selection(index)
        try:
            row = self.store.label_item(index, cls, expect_id=expect_id, source=SOURCE, round=number,
                                        annotator=annotator)
        except LabelConflictError as e:
            err = RequestError(409, str(e))
            err.current = e.current
            raise err from None
        return {"row": row, "counts": self.counts()}

    def undo(self, label_id, annotator=None, *, override=False):
        """Take back one web label of the current round: the one the page gave (its row id).

        Only its labeler may (``override`` lets anyone), and only while it is still the item's
        current label; the item's previous label (if any) is current again.

        Returns
        -------
        dict: ``removed`` (the deleted row), ``current`` (the item's label now), ``counts``.

        Raises
        ------
        RequestError
            400 for a bad id, 404 for no such web label, 403 for another labeler's, 409 when
            the item changed since or the label belongs to an earlier round.
        """
        if isinstance(label_id, bool) or not isinstance(label_id, numbers.Integral) or label_id < 1:
            raise RequestError(400, f"id must be the label id to undo (an integer >= 1), got {label_id!r:.80}")
        if not isinstance(override, bool):
            raise RequestError(400, f"override must be true or false, got {override!r:.80}")
        annotator = check_annotator(annotator, self.annotator)
        number = self.current_round()
        if number is None:
            raise RequestError(409, "no round has run yet: there is nothing to undo")
        try:
            removed = self.store.remove(int(label_id), source=SOURCE, round=number, annotator=annotator,
                                        override=override)
        except LabelConflictError as e:
            err = RequestError(409, str(e))
            err.current = e.current
            raise err from None
        except UndoRefusedError as e:
            raise RequestError({"missing": 404, "annotator": 403, "round": 409}[e.reason], str(e)) from None
        current = self.store.newest([removed["item"]]).get(removed["item"])
        return {"removed": removed, "current": current, "counts": self.counts()}

    def flag(self, index, flag):
        """Mark a selected item 'skip' or 'unsure' (None clears the mark); the page passes it by."""
        index = parse_index(index, self.n_items)
        if flag is not None and flag not in FLAGS:
            raise RequestError(400, f"flag must be one of {list(FLAGS)} or null, got {flag!r:.80}")
        number = self._in_selection(index)
        with self._lock:
            marks = self._flags.setdefault(str(number), {})
            if flag is None:
                marks.pop(str(index), None)
            else:
                marks[str(index)] = flag
            save_json(self._flags_path, self._flags)
        return {"index": index, "flag": flag}

    def counts(self):
        return dict(zip(self.class_names, map(int, self.store.counts_per_class())))

    def _load_flags(self):
        if not self._flags_path.is_file():
            return {}
        try:
            flags = load_json(self._flags_path)
        except ValueError:  # a damaged marks file costs the marks only, never a label
            return {}
        return flags if isinstance(flags, dict) else {}

    # ------------------------------------------------------------------ previews
    def preview(self, index):
        """What a person looks at for one item: ``{'kind': 'image', 'url'}``, the text, or the row
        (:attr:`kinds.Kind.page_preview`)."""
        index = parse_index(index, self.n_items)
        return self.data.kind_info.page_preview(self.data, index)

    def image(self, index):
        """``(bytes, mime type)`` of one item's image: its source file when the data set has
        files, else the array as PNG. The file is the project's, chosen by index alone."""
        index = parse_index(index, self.n_items)
        ds = self.data
        if not ds.kind_info.images:
            raise RequestError(404, f"this project's items are {ds.kind}, not images")
        if ds.train_paths is not None:
            path = Path(ds.train_paths[index])
            mime = IMAGE_TYPES.get(path.suffix.lower())
            if mime is not None:
                try:
                    data = path.read_bytes()
                except OSError as e:
                    raise RequestError(404, f"the image file of item {index} cannot be read: {e.strerror}") from None
                # Served only if it decodes to the pixels the project loaded (and fingerprinted):
                # a file replaced or a symlink re-pointed since then is refused, never served.
                try:
                    same = np.array_equal(read_images([io.BytesIO(data)], ds.x_train.shape[1])[0], ds.x_train[index])
                except DatasetError:
                    same = False
                if not same:
                    raise RequestError(409, f"the image file of item {index} changed since the project was loaded; "
                                            "restart `al label` (the project refuses data that changed since `al init`)")
                return data, mime
        buf = io.BytesIO()
        Image.fromarray(np.asarray(ds.x_train[index])).save(buf, format="PNG")
        return buf.getvalue(), "image/png"

    # ------------------------------------------------------------------ the next round
    def start_round(self, budget=None, strategy=None):
        """Run the next round (train on every label, evaluate, select) in a background thread.

        Parameters
        ----------
        budget : int, optional
            Items to select; default: as many as the current selection (or 20 before any round).
        strategy : str, optional
            Default: the last round's strategy, else the project default.

        Returns
        -------
        dict: the job (see :meth:`RoundJob.as_dict`).
        """
        rounds = self.project.rounds()
        if budget is None:
            budget = len(self.selection()[1]) or 20
        if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 1:
            raise RequestError(400, f"budget must be a positive integer, got {budget!r:.80}")
        strategy = strategy or (rounds[-1]["strategy"] if rounds else DEFAULT_STRATEGY)
        if not isinstance(strategy, str):
            raise RequestError(400, f"strategy must be a strategy name, got {strategy!r:.80}")
        with self._lock:
            if self.job.state == "running":
                raise RequestError(409, "a round is already running; wait for it to finish")
            self.job = job = RoundJob()
            job.state, job.started = "running", time.time()
        threading.Thread(target=self._run_round, args=(job, int(budget), strategy), daemon=True,
                         name="labeling-round").start()
        return job.as_dict()

    def _run_round(self, job, budget, strategy):
        echo = self.project.progress

        def progress(message):
            job.log = (job.log + [message])[-LOG_LINES:]
            echo(message)

        job.log.append(f"round with budget {budget}, strategy {strategy} ...")
        self.project.progress = progress
        try:
            res = self.project.run_round(budget, strategy)
        except ValueError as e:  # ProjectError included: one line meant for the user
            job.error, job.state = str(e), "failed"
        except Exception as e:  # noqa: BLE001 -- the page must hear of any failure, not wait forever
            job.error, job.state = f"{type(e).__name__}: {e}", "failed"
        else:
            before = ((res["previous"] or {}).get("metrics") or {}).get("test")
            job.result = {"round": res["round"], "n_labeled": res["n_labeled"], "selected": res["selected"],
                          "strategy": res["strategy"], "before": before, "after": res["metrics"],
                          "n_labeled_before": (res["previous"] or {}).get("n_labeled")}
            job.state = "done"
        finally:
            self.project.progress = echo
            job.finished = time.time()

    def status(self):
        """Rounds so far, labels per class and the learning curve (see ``LabelingProject.status``)."""
        st = self.project.status(figure=True)
        return dict(st, learning_curve="learning_curve.png" if st["learning_curve"] else None)
