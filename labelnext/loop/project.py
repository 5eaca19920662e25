"""The active-learning loop as a project folder: select, label, retrain, select again.

A project folder holds everything that lasts::

    project.json        data set source + fingerprint, classes, seed, model settings
    labels.sqlite       the label store (every label with its source, round and time)
    round-000/          one folder per round, written as a unit:
        model/              the run trained on every label the store had (runs.write_run)
        selection.csv       the items chosen for labeling, best first, with scores
        round.json          strategy, budget, labels used, test accuracy and macro-F1
    learning_curve.png  test accuracy per round (rewritten by ``status``)
    selection_space_lsa.npy  the label-free text features (``al init --selection-space lsa``), once
    features_patches.npz  the label-free image features and their encoder (``al init --features patches``), once
    features_embeddings.npz  the user's embeddings (``al init --embeddings FILE``), copied at init

:class:`LabelingProject` is the loop in Python; the ``al`` command (``labelnext/cli.py``) calls
its methods. Every round trains on ALL labels in the store and evaluates on the held-out
split (the data set's own, or the fixed stratified one ``datasets.with_holdout`` draws),
through :func:`loop.round.run_round`, the round the label-efficiency benchmark simulates.
"""
import csv
import fnmatch
import time
from pathlib import Path

import numpy as np

from labelnext import strategies
from labelnext.data import dataset_fingerprint, kinds, load_dataset, with_holdout
from labelnext.features.embeddings import check_request, embeddings_for, load_embeddings
from labelnext.features.inputs import kept_features, resolve_features
from labelnext.features.patches import features_model
from labelnext.features.pretrained import INPUT_SIZE as PRETRAINED_SIZE
from labelnext.io import plots
from labelnext.io.files import (LockHeld, load_json, save_figure, save_json, save_npy, staged_folder,
                                try_lock)
from labelnext.io.sheets import (labelstudio_config, neutralize_cell, read_label_csv, read_labelstudio_export,
                                 restore_cell, write_label_csv, write_labelstudio_tasks)
from labelnext.loop.evaluation import AUDIT_SHARE, audit_size, draw_audit, measure, mix, stopping_signal
from labelnext.loop.learner import candidates_for
from labelnext.loop.ledger import ProjectError, finish, previous_summary, round_rows, stop_signal
from labelnext.loop.round import EPOCHS_PER_FIT, STEPS, round_trainer, run_round
from labelnext.loop import sharded
from labelnext.loop.store import LabelStore
from labelnext.strategies.space import SELECTION_SPACES, check_space, pool_space
from labelnext.training.backbones import adapt_data, check_weights
from labelnext.training.runs import write_run
from labelnext.training.trainer import draw_labeled_set
from labelnext.utils.checks import check_choice, check_float, check_int
from labelnext.strategies.auto import auto_params

PROJECT_FILE = "project.json"
STORE_FILE = "labels.sqlite"
# Held while a round runs: one writer of rounds at a time (the command line and the page alike).
ROUND_LOCK = ".round.lock"
# Names the project writes itself (top level): an export may never replace one of them.
OWN_FILES = (PROJECT_FILE, f"{STORE_FILE}*", "round-*", "learning_curve.png", "features_*.npz",
             "selection_space_*.npy", ".*")
# Side of the loaded images unless --image-size says otherwise (pretrained features: the encoder's).
IMAGE_SIZE = 32
# project.json's keys and the types every command relies on.
CONFIG_KEYS = {"dataset": dict, "class_names": list, "n_items": int, "mode": str, "seed": int, "arch": str,
               "steps": int}
DATASET_KEYS = ("source", "name", "kind", "fingerprint", "image_size", "label_column", "text_column", "test")
FORMATS = ("csv", "labelstudio")
# Typicality while labels per class are few, then uncertainty with diversity (strategies/auto.py).
DEFAULT_STRATEGY = "auto"


def _round_dir(root, number):
    return Path(root) / f"round-{number:03d}"


class LabelingProject:
    """An open project folder (see the module docstring).

    Parameters
    ----------
    path : str or Path
        A folder made by :meth:`create`.
    progress : callable or None
        Called with one-line progress messages (the CLI prints them to stderr).
    """

    def __init__(self, path, *, progress=None):
        self.path = Path(path)
        config_file = self.path / PROJECT_FILE
        if not config_file.is_file():
            raise ProjectError(f"--project {str(self.path)!r} is not a project folder (no {PROJECT_FILE}): "
                               f"create one with `al init DATA --project {self.path}`")
        try:
            config = load_json(config_file)
        except ValueError as e:  # not JSON, not UTF-8
            raise ProjectError(f"{str(config_file)!r} is not valid JSON ({e}); restore it from a backup") from None
        self.config = _check_config(config, config_file)
        store_file = self.path / STORE_FILE
        if not store_file.is_file():
            raise ProjectError(f"--project {str(self.path)!r} has no label store ({STORE_FILE} is missing): every "
                               "label lives there, so nothing runs without it; restore it from a backup")
        self.progress = progress or (lambda message: None)
        self.class_names = list(self.config["class_names"])
        self.store = LabelStore(self.path / STORE_FILE, n_items=self.config["n_items"], class_names=self.class_names)
        self._data = self._embeddings = None

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path, dataset, *, initial=None, stratified=True, random_state=0, arch=None, steps=None,
               image_size=None, kind="auto", label_column=None, text_column=None, test=None, drop_columns=None,
               keep_columns=None, selection_space="model", features="raw", weights=None, epochs_per_fit=EPOCHS_PER_FIT,
               audit=None, embeddings=None, progress=None):
        """Make a project folder for ``dataset`` and put its first labels in the store.

        Parameters
        ----------
        path : str or Path
            A folder that does not exist yet, or an empty one.
        dataset : str or Path
            Anything :func:`datasets.load_dataset` reads.
        initial : int or None
            Simulation: draw this many seed labels (seeded, stratified) from a fully or partly labeled data
            set; every other label stays hidden until a round's selection is labeled
            (``import_labels(oracle=True)`` reveals it). None: the known labels seed, the unlabeled items pool.
        image_size : int or None
            Side every image is resized to; None: the encoder's input size with pretrained
            features (it sees only the pixels loaded), else :data:`IMAGE_SIZE`.
        steps : int or None
            Optimiser steps per training at least (:class:`loop.round.RoundTrainer`, the recipe the
            benchmark measures too); None: :data:`loop.round.STEPS`.
        epochs_per_fit : float
            Grow the steps to this many passes over the labeled set when ``steps`` is fewer,
            rounded up to a multiple of ``steps`` (:func:`loop.round.fit_steps`); 0: ``steps`` every round.
        drop_columns, keep_columns : str ('A,B') or list of str, optional
            A table's feature columns to leave out, or the only ones to use; recorded, so every round loads
            the same columns. Columns that look like leaks are named in the notes (``al init`` prints them).
        selection_space : {'model', 'lsa'}
            Where the distance-based strategies (``auto``'s DBAL and TypiClust among them)
            measure distances each round: the round's model embeddings, or (text) a label-free
            LSA space of the pool's text (:mod:`selection_space`).
        features : {'raw', 'patches', 'pretrained', 'embeddings', 'auto'}
            What the model is trained on and the strategies read: the data as loaded, (images) k-means
            patch features (:mod:`patch_features`) or pretrained ones, or the file ``embeddings``
            (:mod:`features.embeddings`; implies it), for a model of :data:`features.patches.FEATURE_MODELS`
            (default :data:`features.patches.DEFAULT_FEATURE_MODEL`'s). ``auto``:
            :func:`features.inputs.resolve_features` (pretrained for images when the extra is installed).
        weights : None, 'imagenet' or a path
            Initial weights of ``mobilenetv3`` (:func:`backbones.check_weights`): pretrained
            features for the model that every round trains on.
        audit : float or None
            Share of each round's budget drawn uniformly at random from the pool, mixed into the selection
            unmarked and kept out of training: once labeled, these items are the evaluation set
            (:mod:`loop.evaluation`). None: :data:`loop.evaluation.AUDIT_SHARE` for a real pool (whose seed
            labels then all train) and for shards without a test split, else 0 (a simulation's test split).

        Returns
        -------
        LabelingProject
        """
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ProjectError(f"--project {str(path)!r} exists and is not an empty folder; "
                               "pick a new folder (a project is never written over)")
        steps = STEPS if steps is None else check_int(steps, "--steps", low=1)
        check_float(epochs_per_fit, "epochs_per_fit", 0.0, None)
        check_int(random_state, "--seed", low=0)
        check_choice(selection_space, "--selection-space", SELECTION_SPACES)
        features = check_request(features, embeddings)
        on_shards, kind = sharded.shards_request(embeddings, dataset, kind, arch)  # DATA listed, shards read in place
        load = dict(kind=kind, label_column=label_column, drop_columns=drop_columns, keep_columns=keep_columns,
                    text_column=text_column, test=test, holdout=False)
        ds = load_dataset(dataset, image_size=image_size or IMAGE_SIZE, **load)
        features = resolve_features(features, ds.kind_info, arch)
        if image_size is None and features == "pretrained":
            # The encoder sees only the pixels loaded: photos at its own input size, not thumbnails.
            ds = load_dataset(dataset, image_size=PRETRAINED_SIZE, **load)
        image_size = image_size or (PRETRAINED_SIZE if features == "pretrained" else IMAGE_SIZE)
        mode = "simulation" if initial is not None else "pool"
        # Shards get no drawn held-out split (it would reorder their rows): their audit measures instead.
        audit = check_float(AUDIT_SHARE if audit is None and (mode == "pool" or on_shards and ds.x_test is None)
                            else audit or 0.0, "--audit", 0.0, 0.9)
        # A real pool evaluated by its audit trains on every seed label; otherwise a fixed
        # stratified share of the labeled items is held out when the data has no test split.
        holdout = not (mode == "pool" and audit > 0 or on_shards)
        # Matched to the items as listed, before the held-out split (which the rows then follow).
        read = sharded.check_shards if on_shards else embeddings_for
        user = None if embeddings is None else read(embeddings, ds, holdout)
        if holdout:
            ds = with_holdout(ds)
        check_space(selection_space, ds.kind)
        arch = features_model(features, ds.kind, arch)
        known = np.flatnonzero(ds.y_train >= 0)
        if initial is not None:
            check_int(initial, "--initial", low=2, high=max(2, len(known) - 1))
            seed_rows = known[draw_labeled_set(ds.y_train[known], initial, random_state=random_state,
                                               stratified=stratified)]
        else:
            if len(known) == len(ds.y_train):
                raise ProjectError(f"every item of {dataset} is labeled, so there is nothing to select: "
                                   "pass --initial N to simulate labeling from N seed labels")
            seed_rows = known
        if len(np.unique(ds.y_train[seed_rows])) < 2:
            raise ProjectError(f"the seed labels cover {len(np.unique(ds.y_train[seed_rows]))} class; "
                               "label items of at least 2 classes first (or raise --initial)")
        if arch is None:
            arch = ds.kind_info.default_model
        elif features == "raw":  # e.g. the table MLP cannot read images
            check_choice(arch, "--arch", (*ds.kind_info.models, "auto"))
        weights = check_weights(weights, arch)
        if weights not in (None, "imagenet"):  # rounds may run from another folder
            weights = str(Path(weights).resolve())
        config = {
            "version": 1,
            # What load_dataset is given again each round: a name ('digits', 'cifar10') or an absolute path.
            "dataset": {"source": str(Path(dataset).resolve()) if Path(dataset).exists() else str(dataset),
                        "name": ds.name, "kind": ds.kind, "fingerprint": dataset_fingerprint(ds),
                        "image_size": image_size, "label_column": label_column, "text_column": text_column,
                        # What was left out of a table, so every round loads the same columns.
                        "drop_columns": drop_columns, "keep_columns": keep_columns, "holdout": holdout,
                        "test": None if test is None else str(Path(test).resolve())},
            "class_names": list(ds.class_names),
            "n_items": int(len(ds.y_train)),
            "n_test": 0 if ds.y_test is None else int(len(ds.y_test)),
            "mode": mode,
            "seed": int(random_state),
            "arch": arch,
            "weights": weights,
            "steps": int(steps),
            "epochs_per_fit": float(epochs_per_fit),
            "audit": audit,
            "selection_space": selection_space,
            "features": features,
            "embeddings": None if user is None else user.record,
            "notes": list(ds.notes),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        # Built beside its final place and renamed in: a failed init leaves nothing.
        with staged_folder(path) as tmp:
            save_json(tmp / PROJECT_FILE, config)
            with LabelStore(tmp / STORE_FILE, n_items=config["n_items"], class_names=config["class_names"]) as store:
                store.add(seed_rows, ds.y_train[seed_rows], source="seed", round=0)
            if user is not None:
                user.save(tmp)
        project = cls(path, progress=progress)
        project._data, project._embeddings = ds, None if user is None else (user.pool, user.test)
        return project

    # ------------------------------------------------------------------ state
    @property
    def data(self):
        """The project's data set, loaded once and checked against the recorded fingerprint."""
        if self._data is None:
            d = self.config["dataset"]
            self.progress(f"loading {d['source']} ...")
            ds = load_dataset(d["source"], image_size=d["image_size"], kind=kinds.get(d["kind"]).load_as,
                              label_column=d["label_column"], text_column=d["text_column"], test=d["test"],
                              drop_columns=d.get("drop_columns"), keep_columns=d.get("keep_columns"),
                              holdout=d.get("holdout", True))
            if dataset_fingerprint(ds) != d["fingerprint"]:
                raise ProjectError(f"the data at {d['source']} changed since `al init` (fingerprint differs): "
                                   "item indices would no longer match the labels; start a new project")
            if self.config.get("features") == "embeddings":  # the copy made at init (shards: in place) is unchanged
                read = sharded.reopen if self.config["embeddings"].get("layout") == sharded.LAYOUT else load_embeddings
                self._embeddings = read(self.path, self.config["embeddings"], ds)
            self._data = ds
        return self._data

    def rounds(self):
        """Finished rounds, oldest first (see :meth:`LabelStore.list_rounds`)."""
        return [r for r in self.store.list_rounds() if r["finished_at"] is not None]

    def last_round(self):
        done = self.rounds()
        return done[-1]["round"] if done else None

    def selection(self, number=None):
        """The selection of a round (default: the last): list of dict rows, best first."""
        number = self.last_round() if number is None else number
        if number is None:
            raise ProjectError(f"no round has run yet: run `al round --project {self.path}` first")
        with open(_round_dir(self.path, number) / "selection.csv", newline="", encoding="utf-8") as f:
            return [{"index": int(r["index"]), "rank": int(r["rank"]), "score": float(r["score"]),
                     "predicted_class": restore_cell(r["predicted_class"]), "confidence": float(r["confidence"])}
                    for r in csv.DictReader(f)]

    # ------------------------------------------------------------------ a round
    def run_round(self, budget, strategy=DEFAULT_STRATEGY, scheduler=None):
        """Train on every label in the store, evaluate, and select ``budget`` items.

        One round runs at a time per project: a second one (another ``al round``, or the
        page's "Run next round") is refused with :class:`ProjectError` while this one runs.
        A pool of embedding shards streams (:mod:`loop.sharded`; ``scheduler``: on that Dask cluster).

        Returns
        -------
        dict: ``round``, ``n_labeled``, ``metrics`` (test accuracy and macro-F1, None
        without a test split), ``previous`` (the last round's metrics or None),
        ``selected`` (how many), ``folder``.
        """
        strategies.get_strategy(strategy)  # a bad name fails before any training
        on_shards = sharded.check_round(self.config, self.path, strategy, scheduler)  # --scheduler: shards only
        try:
            with try_lock(self.path / ROUND_LOCK, what=f"a round with --budget {budget} --strategy {strategy}"):
                return sharded.run(self, budget, strategy, scheduler) if on_shards else self._run_round(budget, strategy)
        except LockHeld as held:
            raise ProjectError(f"--project {str(self.path)!r} is busy: {held} is running; run this round when it "
                               "has finished") from None

    def _run_round(self, budget, strategy):
        frame = round_rows(self, budget)
        labels, audited, train_labels, selectable = frame.labels, frame.audited, frame.train_labels, frame.selectable
        out = np.zeros(len(labels), bool)  # rows no strategy sees: every audit item, this round's too
        out[audited] = True
        ds = self.data
        previous = frame.done[-1] if frame.done else None
        number = self.store.start_round(strategy=strategy)
        seed = self.config["seed"]
        n_labeled = int((train_labels >= 0).sum())
        rows = np.flatnonzero(train_labels >= 0)
        x, x_test = self._model_inputs(number)
        arch = self.config["arch"]
        # A project.json without epochs_per_fit trains a fixed --steps.
        features = self.config.get("features", "raw")
        trainer = round_trainer(x.shape[1:], len(self.class_names), arch=arch, weights=self.config.get("weights"),
                                candidates=candidates_for(ds.kind_info, features), features=features,
                                steps=self.config["steps"],
                                epochs_per_fit=self.config.get("epochs_per_fit", 0.0))
        steps = trainer.steps_for(n_labeled)
        what = (f"the better of {' and '.join(trainer.candidates)} by cross-validation" if arch == "auto"
                else f"{arch} ({'to convergence' if steps is None else f'{steps} steps'})")
        self.progress(f"round {number}: training {what} on {n_labeled} labels, "
                      f"one inference pass over {len(ds.y_train)} items ...")
        trainer.start(seed, adapt=adapt_data(arch, x, rows, features))
        # The audit's draw has its own stream: the strategy's selection is the same with or without it.
        audit_now = draw_audit(selectable, audit_size(budget, self.config.get("audit", 0.0)),
                               np.random.RandomState([seed, number, 1]))
        out[audit_now] = True
        params = {"auto": auto_params(arch, features)}
        space_name = self.config.get("selection_space", "model")  # projects made before it: the model's
        result = run_round(trainer, x, train_labels, strategy=strategy, budget=budget - len(audit_now), seed=seed,
                           number=number, x_test=x_test, y_test=ds.y_test if x_test is not None else None,
                           params=params, space=self._selection_space(space_name, number),
                           exclude=out if out.any() else None)
        fit, sel = result.fit, result.selection
        if sel.reason:
            self.progress(f"round {number}: auto: {sel.reason}")
        chosen = mix(sel.rows, audit_now, np.random.RandomState([seed, number, 2]))
        graded = audited[labels[audited] >= 0]
        audit = measure(fit.probs[graded], labels[graded]) if self.config.get("audit") else None
        test = fit.metrics  # the test split's, with its interval (None without one)
        stop_pred, stop_kappa = stop_signal(previous and _round_dir(self.path, previous["round"]), fit.probs, seed)
        info = dict(fit.info, train_seconds=round(fit.info["train_seconds"], 2))
        record = {
            "round": number, "strategy": strategy, "method": sel.method,
            "method_reason": sel.reason, "selection_space": space_name, "features": features,
            # The learner that trained: the project's, or the one auto picked (and why, in train.learner).
            "arch": getattr(trainer, "arch_", arch),
            "budget": int(budget), "n_labeled": n_labeled, "n_pool": frame.n_pool,
            # The yardstick: the data set's test split when there is one, else the audit items labeled so far.
            "evaluation": "test" if test is not None else "audit", "metrics": test or audit, "audit": audit,
            "n_audit": int(len(audit_now)), "stop_kappa": stop_kappa,
            "train": info, "select_seconds": round(sel.seconds, 3), "previous": previous_summary(previous),
        }
        folder = self._write_round(number, trainer.model_, rows, chosen, fit.probs, record,
                                   {"audit.npy": audit_now, "stop_predictions.npy": stop_pred})
        return finish(self, record, folder, chosen)

    def _audit_rows(self, rounds):
        """Every item drawn for the audit by the finished ``rounds`` (absolute indices, ascending)."""
        files = [_round_dir(self.path, r["round"]) / "audit.npy" for r in rounds]
        drawn = [np.load(f) for f in files if f.is_file()]
        return np.unique(np.concatenate(drawn)).astype(np.int64) if drawn else np.zeros(0, np.int64)

    def _model_inputs(self, number):
        """What the model reads for the pool and the test split (None without one): the data, the
        user's embeddings (copied at init), or label-free features computed on the first round and
        kept in the folder (:func:`features.inputs.kept_features`)."""
        ds = self.data
        features = self.config.get("features", "raw")  # projects made before it: the data
        if features == "raw":
            return ds.x_train, ds.x_test
        if features == "embeddings":  # copied at init, checked against its digest when the data loaded
            return self._embeddings
        return kept_features(self.path, features, ds, seed=self.config["seed"],
                             progress=lambda line: self.progress(f"round {number}: {line}"))

    def _selection_space(self, name, number):
        """The pool's label-free selection features (:mod:`selection_space`), None for the
        model's embeddings. Computed on the first round that needs them and kept in the
        folder: the data cannot change under a project (its fingerprint is checked), so
        every round would compute the same array."""
        if name == "model":
            return None
        path = self.path / f"selection_space_{name}.npy"
        if path.exists():
            return np.load(path)
        space, seconds = pool_space(name, self.data.x_train, random_state=self.config["seed"])
        self.progress(f"round {number}: {name} selection space {space.shape} in {seconds:.1f} s (kept in {path.name})")
        save_npy(path, space)
        return space

    def _write_round(self, number, model, train_rows, chosen, probs, record, arrays):
        """Write ``round-NNN/`` next to its final place, then rename it in (a round is
        either all there or not there; one left by a crashed attempt, which the store never
        finished, is replaced)."""
        final = _round_dir(self.path, number)
        with staged_folder(final) as tmp:
            write_run(tmp / "model", model, train_rows, {
                "dataset": self.config["dataset"]["name"], "classes": self.class_names, "arch": record["arch"],
                "seed": self.config["seed"], "round": number, "labeled_size": int(len(train_rows)),
                "n_classes": len(self.class_names), "input_shape": list(model.input_shape[1:]),
                "features": self.config.get("features", "raw"),
                "test_accuracy": (record["metrics"] or {}).get("accuracy"),
            })
            pred = probs[chosen].argmax(axis=1)
            with open(tmp / "selection.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["rank", "index", "score", "predicted_class", "confidence"])
                for rank, (item, c) in enumerate(zip(chosen, pred)):
                    # Strategies return an order; the score is the rank's complement in [0, 1].
                    w.writerow([rank, int(item), f"{1 - rank / len(chosen):.4f}", neutralize_cell(self.class_names[c]),
                                f"{probs[item, c]:.4f}"])
            save_json(tmp / "round.json", record)
            for name, array in arrays.items():
                save_npy(tmp / name, array)
        return final

    # ------------------------------------------------------------------ labels in and out
    def _item_preview(self, index, out_dir):
        """What a person looks at for one item: an image path, or a text / row snippet
        (:attr:`kinds.Kind.sheet_preview`)."""
        return self.data.kind_info.sheet_preview(self.data, index, out_dir)

    def export(self, out, format="csv", *, image_url=None):
        """Write the last round's selection as a sheet to fill in or Label Studio tasks.

        Returns
        -------
        dict with ``path`` (and ``config`` for Label Studio: the labeling config XML file)
        """
        check_choice(format, "--format", FORMATS)
        out = Path(out)
        if out.is_dir():
            raise ProjectError(f"--out {str(out)!r} is a folder; give a file name")
        for path in (out, out.with_suffix(".xml"), out.parent / f"{out.stem}_images"):
            self._check_not_own(path)
        number = self.last_round()
        rows = self.selection(number)
        thumbs = out.parent / f"{out.stem}_images"
        for row in rows:
            row["image"] = self._item_preview(row["index"], thumbs)
        if format == "csv":
            write_label_csv(out, [{"index": r["index"], "label": "", "predicted_class": r["predicted_class"],
                                   "confidence": r["confidence"], "image": r["image"]} for r in rows])
            return {"path": str(out), "round": number, "n_items": len(rows)}
        write_labelstudio_tasks(out, rows, self.class_names, model_version=f"round-{number}",
                                image_url=image_url or "/data/local-files/?d={image}")
        config = out.with_suffix(".xml")
        config.write_text(labelstudio_config(self.class_names), encoding="utf-8")
        return {"path": str(out), "config": str(config), "round": number, "n_items": len(rows)}

    def _check_not_own(self, path):
        """Refuse an output that would replace one of the project's own files."""
        root, target = self.path.resolve(), Path(path).resolve()
        if target == root or (root in target.parents
                              and any(fnmatch.fnmatch(target.relative_to(root).parts[0], p) for p in OWN_FILES)):
            raise ProjectError(f"--out {str(path)!r} would replace the project's own {target.relative_to(root)}; "
                               "write the sheet elsewhere")

    def import_labels(self, file=None, *, oracle=False, annotator=None):
        """Add labels to the store: a filled-in CSV sheet, a Label Studio JSON export, or
        (simulations only) the true labels of the last round's selection.

        Every index and class is checked before anything is written; the write is one
        transaction. A label for an item that already has one is kept as history and the
        newest wins.

        Returns
        -------
        dict: ``added``, ``source`` and, for Label Studio, the skipped-annotation counts.
        """
        number = self.last_round()
        round_no = 0 if number is None else number
        if oracle:
            if file is not None:
                raise ProjectError("pass either a file or --oracle, not both")
            if self.config["mode"] != "simulation":
                raise ProjectError("--oracle reveals hidden labels, which exist only in a simulation "
                                   "(`al init ... --initial N`); label the items instead")
            items = np.array([r["index"] for r in self.selection(number)], dtype=np.int64)
            truth = self.data.y_train[items]
            items, classes = items[truth >= 0], truth[truth >= 0]
            added = self.store.add(items, classes, source="oracle", round=round_no, annotator=annotator)
            return {"added": int(added), "source": "oracle"}
        if file is None:
            raise ProjectError("give a labels file (CSV sheet or Label Studio JSON export) or --oracle")
        file = Path(file)
        if not file.is_file():
            raise ProjectError(f"labels file {str(file)!r} does not exist")
        stats = {}
        if file.suffix.lower() == ".json":
            items, classes, stats = read_labelstudio_export(file, self.class_names, n_items=self.config["n_items"])
            source = "labelstudio"
        else:
            items, classes = read_label_csv(file, self.class_names, n_items=self.config["n_items"])
            source = "csv"
        if not len(items):  # almost always the wrong file, or a sheet saved before it was filled in
            raise ProjectError(f"{str(file)!r} holds no label: fill in the 'label' column (a class name or id) "
                               "and import it again" if source == "csv" else
                               f"{str(file)!r} holds no usable annotation ({stats['tasks']} tasks; cancelled "
                               f"{stats['cancelled']}, empty {stats['empty']}): annotate in Label Studio and export again")
        added = self.store.add(items, classes, source=source, round=round_no, annotator=annotator)
        return {"added": int(added), "source": source, **stats}

    # ------------------------------------------------------------------ status
    def status(self, *, figure=True):
        """Rounds so far, labels per class, the stopping signal and (with ``figure``) the learning curve PNG.

        Returns
        -------
        dict: ``rounds`` (list of ``round``, ``n_labeled``, ``accuracy``, ``macro_f1``,
        ``n_eval`` (items the accuracy was measured on), ``accuracy_ci`` (its 95% interval),
        ``evaluation`` ('test' or 'audit'), ``stop_kappa``, ``strategy``), ``labels_per_class``,
        ``n_labeled``, ``n_pool``, ``mode``, ``stopping`` (:func:`loop.evaluation.stopping_signal`),
        ``learning_curve`` (path or None).
        """
        self.data  # noqa: B018 -- like round, export and label: refuse data that changed since `al init`
        rounds = []
        for r in self.rounds():
            metrics = r["metrics"] or {}
            test = metrics.get("test") or {}
            rounds.append({"round": r["round"], "n_labeled": r["n_labeled"], "accuracy": test.get("accuracy"),
                           "macro_f1": test.get("macro_f1"), "n_eval": test.get("n_eval"),
                           "accuracy_ci": test.get("accuracy_ci"),
                           "evaluation": metrics.get("evaluation", "test"),
                           "stop_kappa": metrics.get("stop_kappa"), "strategy": r["strategy"]})
        counts = self.store.counts_per_class()
        n_labeled = int(sum(counts))
        curve = None
        points = [r for r in rounds if r["accuracy"] is not None]
        if figure and points:
            curve = self.path / "learning_curve.png"
            save_figure(curve, plots.learning_curve_interval(
                [r["n_labeled"] for r in points], [r["accuracy"] for r in points],
                [r["accuracy_ci"] for r in points], [r["n_eval"] for r in points],
                title=f"{self.path.name}: accuracy per round"))
            curve = str(curve)
        return {"project": str(self.path), "mode": self.config["mode"], "rounds": rounds,
                "labels_per_class": dict(zip(self.class_names, (int(c) for c in counts))),
                "n_labeled": n_labeled, "n_pool": int(self.config["n_items"] - n_labeled),
                "stopping": stopping_signal(rounds), "learning_curve": curve}

    def close(self):
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_config(config, path):
    """project.json as every command expects it, or one line naming the file and what is wrong."""
    where = f"{str(path)!r}"
    if not isinstance(config, dict):
        raise ProjectError(f"{where} must hold a JSON object, got {type(config).__name__}; restore it from a backup")
    for key, kind in CONFIG_KEYS.items():
        if key not in config:
            raise ProjectError(f"{where} has no {key!r}; restore it from a backup")
        if not isinstance(config[key], kind) or isinstance(config[key], bool):
            raise ProjectError(f"{where}: {key!r} must be {kind.__name__}, got {type(config[key]).__name__}")
    missing = [k for k in DATASET_KEYS if k not in config["dataset"]]
    if missing:
        raise ProjectError(f"{where}: 'dataset' has no {missing}; restore it from a backup")
    names = config["class_names"]
    if len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise ProjectError(f"{where}: 'class_names' must be a list of at least 2 strings")
    return config
