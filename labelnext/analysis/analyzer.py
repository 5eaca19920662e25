"""ActiveLearningAnalyzer: which unlabeled items to label next.

Pool state (indices, labeled mask, labels), ONE cached inference pass of the base
model through ``keras_run.KerasModel``, the three analyses (uncertainty, diversity,
novelty) and their intersection, named strategies, class balance and retraining.
No argparse and no file formats here: files, figures and text go through
:mod:`reports`; the command lines live in ``AL_cycle.py``.
"""
import os
import time
from pathlib import Path

import numpy as np

from labelnext import heuristics as alf
from labelnext.utils import checks
from labelnext import gnn
from labelnext.analysis import model_run as keras_run
from labelnext import knn
from labelnext.io import reports
from labelnext.data import kinds
from labelnext.io import files as results_io
from labelnext import strategies
from labelnext.utils.console import progress
from labelnext.utils.defaults import DEFAULT_RUN, MODEL_FILE, TARGET_PER_CLASS
from labelnext.analysis.pool import Pool
from labelnext.analysis import large_pools
from labelnext.loop.round import select_round, selection_context

DEFAULT_MODEL = DEFAULT_RUN / MODEL_FILE
ANALYSES = alf.ANALYSES


class ActiveLearningAnalyzer:
    """Pool state, one cached inference pass, the analyses, class balance and retraining.

    Parameters
    ----------
    model_path : str or Path
        ``best_model.keras`` (or its run folder) written by ``train.py``; the labeled
        set is read from ``labeled_indices.npy`` beside it.
    labeled_size : int or None
        Expected size of that labeled set (checked, never used to take "the first N rows").
    start_idx, end_idx : int or None
        Narrow the pool to training indices in ``[start_idx, end_idx)``; by default every
        unlabeled training item is in the pool.
    target_per_class : int, default=TARGET_PER_CLASS (20)
        Items per class wanted from the selection before retraining.
    dataset, data_dir : str or None
        Data set (see ``datasets.load_dataset``); default: the one the model was trained on.
    results_dir : str or Path
        Outputs go to ``results_dir/<analysis>/``; the inference cache to ``results_dir/cache/``.
    random_state : int
        Seeds every stochastic step (KMeans, tie-breaking, HNSW, retraining).
    auto_retrain : bool
        ``find_intersection`` retrains when the class targets are met.
    retrain_steps : int >= 1 or None
        Step budget of each fit of :meth:`retrain` (default: the base model's).
    retrain_patience : int >= 1
        Epochs without a better validation accuracy before a fit of :meth:`retrain` stops.
    batch_size : int >= 1
        Inference batch size.
    compare_seeds : int >= 1
        Seeds the retraining's "selection vs random" comparison runs over.
    verbose : bool
        Progress lines on stderr.

    Attributes
    ----------
    pool_ : pool.Pool, whose fields ``indices_``, ``labeled_mask_``, ``labels_``,
        ``pool_mask_``, ``pool_indices_`` and ``class_names`` the analyzer exposes
    indices_ : ndarray of shape (n_items,), int64, absolute indices of labeled + pool items
    labeled_mask_ : ndarray of shape (n_items,), bool
    labels_ : ndarray of shape (n_items,), int64, -1 where unknown
    probs_, embeddings_ : the one inference pass over ``indices_`` (computed on first read)
    """

    def __init__(self, model_path=DEFAULT_MODEL, labeled_size=None, start_idx=None, end_idx=None,
                 target_per_class=TARGET_PER_CLASS, dataset=None, data_dir=None, results_dir="results", random_state=0,
                 auto_retrain=True, retrain_steps=None, batch_size=256, verbose=True,
                 compare_seeds=keras_run.COMPARE_SEEDS, retrain_patience=keras_run.PATIENCE):
        self.target_per_class = checks.check_int(target_per_class, "target_per_class", low=1)
        self.random_state = checks.check_int(random_state, "random_state", low=0)
        self.batch_size = checks.check_int(batch_size, "batch_size", low=1)
        self.retrain_steps = None if retrain_steps is None else checks.check_int(retrain_steps, "retrain_steps", low=1)
        self.compare_seeds = checks.check_int(compare_seeds, "compare_seeds", low=1)
        self.retrain_patience = checks.check_int(retrain_patience, "retrain_patience", low=1)
        for name, value in (("auto_retrain", auto_retrain), ("verbose", verbose)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        self.results_dir = Path(results_dir)
        self.auto_retrain = bool(auto_retrain)
        self.verbose = bool(verbose)
        self.results_, self.timings_, self.metadata = {}, {}, {}
        self.intersection_ = self.retrain_report_ = self.model = self.model_path = self.data = self.pool_ = None
        self._probs = self._embeddings = self._images = self._standardized = self._mc_probs = self._item_paths = None
        self._files = {}  # 'probs' / 'embeddings' -> the file given for it (what Dask workers read)
        if model_path is not None:  # None: from_arrays fills the state in
            self._load(model_path, labeled_size, start_idx, end_idx, dataset, data_dir)

    def _load(self, model_path, labeled_size, start_idx, end_idx, dataset, data_dir):
        """Model, data set and pool of a Keras run (see ``keras_run.open_run``)."""
        self.model, self.data, labeled, self.metadata = keras_run.open_run(model_path, labeled_size, dataset, data_dir)
        self.model_path = self.model.path
        self.pool_ = Pool.from_labeled_set(labeled, self.data.y_train, self.data.class_names, start_idx, end_idx)

    @classmethod
    def from_arrays(cls, probs, embeddings, labeled_mask, labels=None, images=None, *, class_names=None, mc_probs=None,
                    target_per_class=TARGET_PER_CLASS, results_dir="results", random_state=0, verbose=True):
        """An analyzer over outputs of any model (PyTorch, scikit-learn, an API).

        Parameters
        ----------
        probs : ndarray of shape (n_samples, n_classes), or the path of a ``.npy``
        embeddings : ndarray of shape (n_samples, n_features); may be a memory-mapped ``.npy``,
            or the path of a ``.npy`` (memory-mapped), a ``.parquet`` or a folder of ``.npy`` /
            Parquet shards (:func:`labelnext.scale.shards.open_rows`: read block by block, never
            whole); a path given is what ``find_intersection(client=...)``'s workers read
        labeled_mask : ndarray of shape (n_samples,), bool
        labels : ndarray of shape (n_samples,), int, optional; -1 where unknown
        images : ndarray, optional, the items for figures: (n_samples, h, w, 3) images,
            (n_samples, n_features) table rows or (n_samples,) texts
        class_names : list of str, optional
        mc_probs : ndarray of shape (n_passes, n_samples, n_classes), optional
            Probabilities of MC-dropout passes of the model, for ``select('bald', ...)``.

        Every analysis, the intersection and the class-balance report work; retraining
        is the caller's job. Indices written to disk are row numbers of these arrays.
        """
        self = cls(model_path=None, target_per_class=target_per_class, results_dir=results_dir,
                   random_state=random_state, auto_retrain=False, verbose=verbose)
        if isinstance(probs, (str, os.PathLike)):
            self._files["probs"], probs = probs, np.asarray(large_pools.open_pool(probs, "probs"))
        if isinstance(embeddings, (str, os.PathLike)):
            self._files["embeddings"], embeddings = embeddings, large_pools.open_pool(embeddings, "embeddings")
        probs = checks.check_probs(probs)
        n = probs.shape[0]
        embeddings = checks.check_embeddings(embeddings, n_samples=n)
        self.pool_ = Pool.from_mask(labeled_mask, labels, class_names, n_classes=probs.shape[1])
        if images is not None and len(images) != n:
            raise ValueError(f"images has {len(images)} items but probs has {n}")
        self._probs, self._embeddings, self._images, self.metadata = probs, embeddings, images, {"dataset": "arrays"}
        self._mc_probs = None if mc_probs is None else strategies.bald.check_mc_probs(mc_probs, n_samples=n)
        return self

    @classmethod
    def from_inference(cls, model, source, out_dir, labeled_mask=None, labels=None, *, client=None, overwrite=False,
                       block_rows=None, **kwargs):
        """An analyzer over a pool too large for memory, through one streamed inference pass.

        :func:`labelnext.scale.inference.stream_predict` writes ``out_dir/probs.npy`` and
        ``out_dir/embeddings.npy`` block by block (a rerun resumes; another model or source is
        refused unless ``overwrite``); the analyses then read them memory-mapped.

        Parameters
        ----------
        model : str or Path of a run folder or ``.keras`` file (or a Keras model, without ``client``)
        source : a folder of images, a ``.npy`` array of items, or an ndarray
        out_dir : str or Path
        labeled_mask : ndarray of shape (n_items,), bool, optional
            Default, for a folder of images: the layout ``al init`` reads (images under a class
            sub-folder are labeled, those under ``unlabeled/`` are the pool). Required for arrays.
        labels : as in :meth:`from_arrays`
        client : distributed.Client, optional
            Its workers predict the blocks (the model and the source must be readable there).
        overwrite, block_rows : as in ``stream_predict``
        **kwargs : the keyword arguments of :meth:`from_arrays`
        """
        if labeled_mask is None and not (isinstance(source, (str, os.PathLike)) and Path(source).is_dir()):
            raise ValueError("labeled_mask is required unless source is a folder of images (then its layout says it)")
        out = large_pools.stream_outputs(model, source, out_dir, client=client, overwrite=overwrite,
                                         block_rows=block_rows, progress=kwargs.get("verbose", True))
        if labeled_mask is None:
            labeled_mask = large_pools.folder_labeled_mask(out["items"])
        kwargs.setdefault("class_names", large_pools.model_classes(model))
        self = cls.from_arrays(out["probs"], out["embeddings"], labeled_mask, labels, **kwargs)
        self._item_paths = out["item_paths"]
        self.metadata = {"dataset": str(source) if isinstance(source, (str, os.PathLike)) else "arrays"}
        return self

    # ------------------------------------------------------------------ pool state and inference
    indices_ = property(lambda self: self.pool_.indices)
    labeled_mask_ = property(lambda self: self.pool_.labeled_mask)
    labels_ = property(lambda self: self.pool_.labels)
    pool_mask_ = property(lambda self: self.pool_.pool_mask)
    pool_indices_ = property(lambda self: self.pool_.pool_indices)
    class_names = property(lambda self: self.pool_.class_names)
    pool_range = property(lambda self: self.pool_.pool_range)
    n_classes = property(lambda self: self.pool_.n_classes)

    @property
    def probs_(self):
        self._infer()
        return self._probs

    @property
    def embeddings_(self):
        self._infer()
        return self._embeddings

    @property
    def standardized_(self):
        """Embeddings standardised over labeled + pool items (distances need a common scale).

        A lazy :class:`knn.StandardizedView`: statistics are computed once, rows are
        standardised block by block as the analyses read them, so a 1M x 576 pool (or a
        memory-mapped ``.npy``) is never copied whole."""
        if self._standardized is None:
            self._standardized = knn.StandardizedView(self.embeddings_)
        return self._standardized

    def _log(self, message):
        progress(message, self.verbose)

    def _infer(self):
        """One inference pass over labeled + pool items, cached on disk per model, data set and pool.

        Writes only the cache: the GNN export is the explicit :meth:`export_embeddings`."""
        if self._probs is not None:
            return
        cache = self.results_dir / "cache" / f"inference-{keras_run.cache_key(self.model, self.data, self.indices_)}.npz"
        start = time.perf_counter()

        def compute():
            self._log(f"inference: {len(self.indices_)} items through {self.model_path.name} ...")
            return self.model.predict(self.data.x_train[self.indices_], self.batch_size)

        def check(probs, embeddings):
            checks.check_probs(probs)
            checks.check_embeddings(embeddings, n_samples=len(self.indices_))

        self._probs, self._embeddings = results_io.cached_arrays(cache, ("probs", "embeddings"), compute, check, log=self._log)
        self.timings_["inference"] = round(time.perf_counter() - start, 3)

    def export_embeddings(self, out_dir=None):
        """Write the GNN sidecar's input (the schema in ``gnn/export.py``) to ``out_dir``
        (default ``results_dir/embeddings``); ``python -m gnn`` reads it from there."""
        out = Path(out_dir) if out_dir else self.results_dir / "embeddings"
        metadata = {"dataset": self.metadata.get("dataset", "arrays"), "model_path": str(self.model_path) if self.model_path else None,
                    "n_items": int(len(self.indices_)), "n_labeled": int(self.labeled_mask_.sum()), "n_classes": self.n_classes,
                    "class_names": self.class_names, "pool_range": list(self.pool_range)}
        return gnn.write_export(out, np.asarray(self.embeddings_, dtype=np.float32), self.probs_, self.labels_,
                                self.labeled_mask_, self.indices_, metadata)

    @property
    def kind(self):
        """'image', 'tabular' or 'text': what the items are (decides the top-items figure)."""
        return self.data.kind if self.data is not None else reports.items_kind(self._images)

    def _items_for(self, absolute):
        """Images, table rows or texts of data set items ``absolute`` (None: nothing to show)."""
        if self.data is not None:
            return self.data.x_train[absolute]
        return None if self._images is None else np.asarray(self._images[absolute])

    # ------------------------------------------------------------------ result records
    def _record(self, name, ranked_rows, scores, params, extra=None, *, score_label="score", fill=None):
        """The plain record :func:`reports.write_analysis` writes for pool rows ``ranked_rows`` (best first)."""
        return reports.analysis_record(
            name, ranked_rows, scores, params, extra, score_label=score_label, fill=fill, pool=self.pool_,
            probs=self.probs_[self.pool_mask_], items=self._items_for(self.pool_indices_[ranked_rows[:reports.TOP_GRID]]),
            top_items=kinds.get(self.kind).top_items, feature_names=getattr(self.data, "feature_names", None),
            dataset=self.metadata.get("dataset", "arrays"),
            model_path=str(self.model_path) if self.model_path else None,
            timings={"seconds": self.timings_.get(name), "inference_seconds": self.timings_.get("inference")})

    def _ranked(self, mask, scores):
        """Rows of ``mask``, best score first, seeded tie-breaking."""
        rows = np.flatnonzero(mask)
        order = alf.select_top(scores[rows], len(rows), random_state=self.random_state)
        return rows[order]

    # ------------------------------------------------------------------ analyses
    def analysis_params(self, name, given=None):
        """One analysis' options over ``AL_functions.ANALYSIS_DEFAULTS``, checked against
        this pool before any inference or file write.

        Returns
        -------
        dict, the complete options"""
        checks.check_choice(name, "analysis", ANALYSES)
        params = alf.analysis_params({name: given or {}})[name]
        highs = {"n_clusters": int(self.pool_mask_.sum()), "k_neighbors": int(self.labeled_mask_.sum())}
        choices = {"uncertainty": alf.UNCERTAINTY_METHODS, "diversity": alf.KMEANS_ALGORITHMS, "novelty": knn.KNN_METHODS}
        for key, value in params.items():
            if key.endswith("percentile"):
                checks.check_percentile(value, key)
            elif key in highs:
                checks.check_int(value, key, low=1, high=highs[key])
            else:  # the one choice of each analysis: method / algorithm
                checks.check_choice(value, key, choices[name])
        return params

    def _run(self, name, given, write, computed=None):
        params = self.analysis_params(name, given)
        if computed is None:
            # Uncertainty reads probabilities only: do not standardise embeddings for it.
            x = None if name == "uncertainty" else self.standardized_
            t = time.perf_counter()
            res = alf.run_analysis(name, self.probs_, x, self.labeled_mask_, params, random_state=self.random_state)
            seconds = time.perf_counter() - t
        else:  # (result, seconds) from a Dask cluster: :meth:`_run_on_cluster`
            res, seconds = computed
        mask, scores = res["mask"], res["scores"]
        self.results_[name] = {"mask": mask, "scores": scores, "params": res["params"], "seconds": seconds}
        self.timings_[name] = round(seconds, 3)
        self._log(f"{name} ({reports.DESCRIBE[name].format(**res['params'])}): kept {mask.sum()} of {mask.size}")
        ranked = self._ranked(mask, scores)
        if write:
            # The cluster's diversity keeps no per-cluster parts (representatives): none written.
            parts = (reports.diversity_parts(res, self.pool_indices_, self.standardized_[self.pool_mask_], self.random_state)
                     if name == "diversity" and "clusters" in res else {})
            record = self._record(name, ranked, scores[ranked], res["params"], parts.pop("extra", None))
            record["histogram"] = {"scores": scores, "kept": mask, "threshold": scores[mask].min() if mask.any() else None}
            reports.write_analysis(self.results_dir, dict(record, **parts))
        return self.pool_indices_[ranked]

    def run_uncertainty(self, write=True, **params):
        """Keep pool items above ``threshold_percentile`` of uncertainty.

        ``method``: ``entropy``, ``margin``, ``least_confidence`` or ``combined``
        (above the percentile on entropy OR on margin). Defaults:
        ``AL_functions.ANALYSIS_DEFAULTS['uncertainty']``.

        Returns
        -------
        indices : ndarray of int64, absolute indices of the kept items, best first
        """
        return self._run("uncertainty", params, write)

    def run_diversity(self, write=True, **params):
        """KMeans (``n_clusters``, ``algorithm``) on standardised embeddings; keep items at or
        above ``distance_percentile`` of distance to their centroid.

        Also reports each cluster's representative (the item closest to its centroid).
        Defaults: ``AL_functions.ANALYSIS_DEFAULTS['diversity']``. Returns as :meth:`run_uncertainty`.
        """
        return self._run("diversity", params, write)

    def run_novelty(self, write=True, **params):
        """Mean distance to the ``k_neighbors`` nearest LABELED items (search ``method``);
        keep the top ``novelty_percentile``.

        Defaults: ``AL_functions.ANALYSIS_DEFAULTS['novelty']``. Returns as :meth:`run_uncertainty`.
        """
        return self._run("novelty", params, write)

    def run_all(self, uncertainty_params=None, diversity_params=None, novelty_params=None, write=True):
        """Run the three analyses; each ``*_params`` dict holds that analysis' options.

        Every option is checked before the first analysis runs.

        Returns
        -------
        dict of analysis name -> number of items kept
        """
        given = {"uncertainty": uncertainty_params, "diversity": diversity_params, "novelty": novelty_params}
        checked = {name: self.analysis_params(name, given[name]) for name in ANALYSES}
        for name in ANALYSES:
            self._run(name, checked[name], write)
        return {name: int(self.results_[name]["mask"].sum()) for name in ANALYSES}

    def _run_on_cluster(self, client, names, write):
        """Analyses ``names``, with their defaults, on a Dask cluster's workers: the same masks and
        scores as in this process (``scale.engine.analyze_sharded`` with exact ranks)."""
        files = {key: large_pools.cluster_file(getattr(self, f"{key}_"), self._files.get(key), key,
                                               self.results_dir / "cluster") for key in ("probs", "embeddings")}
        params = {name: self.analysis_params(name) for name in ANALYSES}
        t = time.perf_counter()
        res = large_pools.analyze_on_cluster(client, files["probs"], files["embeddings"], self.labeled_mask_, params,
                                             random_state=self.random_state)
        seconds = time.perf_counter() - t
        for name in names:
            self._run(name, params[name], write, computed=(res[name], seconds))

    def run_gnn(self, **params):
        """Run the GraphSAGE sidecar in-process (see ``gnn.run_gnn``) on the embedding
        export, which this writes first to ``results_dir/embeddings``."""
        params.setdefault("random_state", self.random_state)
        params.setdefault("progress", self.verbose)
        # The GNN ranks a budget (an oversized one raises); 100 unless the pool is smaller.
        params.setdefault("budget", min(100, int(self.pool_mask_.sum())))
        emb_dir = self.export_embeddings()
        t = time.perf_counter()
        res = gnn.run_gnn(emb_dir, self.results_dir / "gnn", **params)
        scores = np.asarray(res["scores"], dtype=np.float64)
        mask = np.zeros(scores.shape[0], dtype=bool)
        mask[np.searchsorted(self.pool_indices_, res["indices"])] = True
        seconds = time.perf_counter() - t
        self.results_["gnn"] = {"mask": mask, "scores": scores, "seconds": seconds,
                                "params": {k: v for k, v in params.items() if k != "progress"}}
        self.timings_["gnn"] = round(seconds, 3)
        return res

    # ------------------------------------------------------------------ named strategies
    def select(self, strategy, budget, params=None, write=True):
        """Pick ``budget`` pool items with a named strategy (the names: see :mod:`strategies`).

        The selection half of the loop's round (:func:`loop.round.select_round`, as in ``al round``
        and the benchmark) on this model's one inference pass: ``auto`` is decided once and its
        reason goes to the summary.

        ``params`` holds per-strategy options, e.g. ``{'anchoral': {'num_anchors': 20}}``.
        Writes ``results_dir/select_<strategy>/`` (indices best first; ``select_<strategy>_scores.npy``
        holds the rank 1..budget, as strategies return an order, not a score; figures say "rank").
        Everything is checked before the first file is written.

        Returns
        -------
        indices : ndarray of shape (budget,), int64, absolute data set indices
        """
        checks.check_int(budget, "budget", low=1, high=int(self.pool_mask_.sum()))
        strategies.get_strategy(strategy)  # validate the name and the options before any work
        strategies.check_params(dict(params or {}))
        model = self.model
        # The loop's round, given this model's one inference pass: one context (labels of labeled
        # rows only, the benchmark oracle's contract), auto decided once, select.
        ctx = selection_context(self.probs_, self.embeddings_, self.labeled_mask_, self.labels_, params=params,
                                head=model and model.head(), dropout_rate=model and model.dropout_rate(),
                                mc_probs=self._mc_probs)
        sel = select_round(strategy, ctx, budget, random_state=self.random_state)
        rows, seconds = sel.rows, sel.seconds
        # e.g. auto's pick and why, modal's fitted head
        note = f"auto: {sel.reason}" if sel.reason else strategies.selection_note(sel.method, ctx, budget)
        if note:
            self._log(f"{strategy}: {note}")
        pool_rows = np.searchsorted(self.pool_indices_, self.indices_[rows])
        name = f"select_{strategy}"
        self.timings_[name] = round(seconds, 3)
        self._log(f"{strategy}: selected {budget} of {int(self.pool_mask_.sum())} pool items in {seconds:.2f} s")
        if write:
            reports.write_analysis(self.results_dir, self._record(
                name, pool_rows, np.arange(1, budget + 1), {"strategy": strategy, "budget": budget, "params": dict(params or {})},
                {"note": note} if note else None, score_label="rank"))
        return self.indices_[rows]

    # ------------------------------------------------------------------ intersection and class balance
    def find_intersection(self, budget=None, use_gnn=False, retrain="auto", write=True, client=None):
        """Intersect uncertainty, diversity and novelty (and the GNN selection), ranked by a combined score.

        Analyses not run yet run with their defaults. With a ``budget`` larger than the
        intersection, the selection is filled up by combined rank (the summary says so).
        When ``retrain='auto'``, a Keras model is loaded and every class reaches
        ``target_per_class``, the model is retrained on the class-balanced selection.

        With a Dask ``client`` (``distributed.Client``), the analyses not run yet run on its
        workers, which read the embeddings and probabilities from the files the analyzer was
        given (:meth:`from_inference`, paths to :meth:`from_arrays`), else from copies written to
        ``results_dir/cluster/``; every worker must be able to read them. The selection is the
        one without a client.

        Returns
        -------
        indices : ndarray of int64, absolute data set indices, best first
        stats : dict
        """
        checks.check_choice(retrain, "retrain", ("auto", True, False))
        if budget is not None:
            checks.check_int(budget, "budget", low=1, high=int(self.pool_mask_.sum()))
        missing = [name for name in ANALYSES if name not in self.results_]
        if client is not None and missing:
            self._run_on_cluster(client, missing, write)
        for name in ANALYSES:
            if name not in self.results_:
                self._run(name, None, write)
        names = list(ANALYSES)
        if use_gnn:
            if "gnn" not in self.results_:
                self.run_gnn()
            names.append("gnn")
        t = time.perf_counter()
        rows, info = alf.intersection_selection({n: self.results_[n]["mask"] for n in names},
                                                {n: self.results_[n]["scores"] for n in names},
                                                budget, random_state=self.random_state)
        combined = info.pop("combined")
        self.timings_["intersection"] = round(time.perf_counter() - t, 3)
        absolute = self.pool_indices_[rows]
        self.intersection_ = {"rows": rows, "indices": absolute, "scores": combined[rows], "info": info, "budget": budget}
        balance = self.check_class_balance()
        stats = dict(info, budget=budget, analyses=names, class_balance=balance, note=reports.intersection_note(info, budget))
        self._log(f"intersection of {' & '.join(names)}: {info['n_intersection']} items, {len(rows)} selected")
        if write:
            # Rows past the intersection were added by combined rank to reach the budget: marked in the grid.
            record = self._record("intersection", rows, combined[rows], {"budget": budget, "analyses": names},
                                  {k: stats[k] for k in reports.INTERSECTION_SUMMARY if stats.get(k) is not None},
                                  fill=np.arange(len(rows)) >= info["n_intersection"])
            reports.write_analysis(self.results_dir, dict(record, overlap=reports.overlap_parts(info)))
        if self.model is not None and balance["met"] and (retrain is True or (retrain == "auto" and self.auto_retrain)):
            stats["retrain"] = self.retrain()
        return absolute, stats

    def _selection(self):  # the selection retraining and the labeling sheet work on
        if self.intersection_ is None:
            raise ValueError("no selection yet: call find_intersection() first")
        return self.intersection_

    def check_class_balance(self):
        """Per-class counts of the selection against ``target_per_class`` (known labels, else predictions)."""
        return self.pool_.class_balance(self._selection()["rows"], self.probs_[self.pool_mask_], self.target_per_class)

    # ------------------------------------------------------------------ labeling sheet
    def export_labeling_csv(self, path=None):
        """Write the selection as ``index,label,predicted_class,confidence,image`` for a person to fill in
        (default ``results_dir/intersection/to_label.csv``).

        ``image`` is the source file where the data set has one, else a thumbnail written beside the CSV
        (images); empty for table rows and texts, which ``top_rows.csv`` / ``top_texts.txt`` show.
        """
        sel = self._selection()
        path = Path(path) if path else self.results_dir / "intersection" / "to_label.csv"
        probs = self.probs_[self.pool_mask_][sel["rows"]]
        paths = getattr(self.data, "train_paths", None) if self.data is not None else self._item_paths
        return reports.write_labeling_csv(
            path, sel["indices"], [self.class_names[int(c)] for c in probs.argmax(axis=1)], probs.max(axis=1),
            image_paths=[paths[a] for a in sel["indices"]] if paths else None,
            images=None if paths or not kinds.get(self.kind).images else self._items_for(sel["indices"]))

    def load_labels_csv(self, path):
        """Read ``index,label`` rows a person filled in (label: class name or id) into the pool's labels.

        Returns
        -------
        int, the number of pool items labeled
        """
        labels = reports.read_labels_csv(path, self.class_names, self.pool_indices_)
        self.pool_.set_labels(labels)
        return len(labels)

    # ------------------------------------------------------------------ retraining
    def retrain(self, output_dir=None, allow_shortfall=False, steps=None, compare_random=True):
        """Add up to ``target_per_class`` items per class from the ranked selection, retrain, save, compare
        (:func:`keras_run.retrain_selection`).

        The new model is trained exactly like the comparison models on random selections
        of the same size (same step budget, validation split and early stopping; ``compare_seeds`` seeds).

        Returns
        -------
        dict with ``added``, ``accuracy_before``, ``accuracy_after``, ``accuracy_random``,
        macro-F1s, ``comparison`` (per seed, mean and sd) and the run folder.
        """
        if self.model is None:
            raise ValueError("retrain needs a Keras model (analyzer built with model_path); with from_arrays, retraining is the caller's job")
        if steps is not None:
            checks.check_int(steps, "steps", low=1)
        balance = self.check_class_balance()
        if not balance["met"] and not allow_shortfall:
            short = {n: s for n, s in zip(self.class_names, balance["shortfall"]) if s}
            raise ValueError(f"class targets not met (shortfall per class: {short}); lower target_per_class, raise the budget, or pass allow_shortfall=True")
        run = Path(output_dir) if output_dir else self.model_path.parent.with_name(self.model_path.parent.name + "_retrained")
        report = keras_run.retrain_selection(
            self.model, self.data, self.pool_, self._selection()["rows"], self.metadata, target_per_class=self.target_per_class, run_dir=run,
            steps=steps or self.retrain_steps or int(self.metadata.get("steps_budget") or 800), random_state=self.random_state,
            compare_seeds=self.compare_seeds, patience=self.retrain_patience, compare_random=compare_random, log=self._log)
        report["target_met"] = balance["met"]
        self.retrain_report_ = report
        reports.write_retrain(self.results_dir, report)
        return report

    # ------------------------------------------------------------------ report
    def get_summary(self):
        """A short plain-text report of everything run so far."""
        info = self.intersection_["info"] if self.intersection_ is not None else None
        return reports.analyzer_report({
            "dataset": self.metadata.get("dataset", "arrays"),
            "n_labeled": int(self.labeled_mask_.sum()),
            "n_pool": int(self.pool_mask_.sum()),
            "analyses": [{"name": name, "n_kept": int(r["mask"].sum()), "params": r["params"], "seconds": r["seconds"]}
                         for name, r in ((n, self.results_.get(n)) for n in ANALYSES + ("gnn",)) if r is not None],
            "intersection": info,
            "balance": self.check_class_balance() if info is not None else None,
            "target_per_class": self.target_per_class,
            "retrain": self.retrain_report_,
        })
