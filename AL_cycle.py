"""ActiveLearningAnalyzer: which unlabeled items to label next.

Runs uncertainty, diversity and novelty over the unlabeled pool from ONE inference
pass of the base model, intersects them, checks class balance against a target and
retrains on the class-balanced selection. ``python AL_cycle.py`` is the main job.
"""
import argparse
import csv
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

import AL_functions as alf
import checks
import knn
import plots
from cli import progress, run_cli
from gnn.export import write_export
from results_io import atomic_path, save_figure, save_json, save_npy, save_text, summary_text

REPO = Path(__file__).resolve().parent
DEFAULT_MODEL = REPO / "models" / "500_train" / "best_model.keras"
ANALYSES = ("uncertainty", "diversity", "novelty")
TOP_GRID = 32


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
    target_per_class : int
        Items per class wanted from the selection before retraining.
    dataset, data_dir : str or None
        Data set (see ``datasets.load_dataset``); default: the one the model was trained on.
    results_dir : str or Path
        Outputs go to ``results_dir/<analysis>/``.
    random_state : int
        Seeds every stochastic step (KMeans, tie-breaking, HNSW, retraining).
    auto_retrain : bool
        ``find_intersection`` retrains when the class targets are met.
    verbose : bool
        Progress lines on stderr.
    """

    def __init__(self, model_path=DEFAULT_MODEL, labeled_size=None, start_idx=None, end_idx=None, target_per_class=50,
                 dataset=None, data_dir=None, results_dir="results", random_state=0, auto_retrain=True,
                 retrain_steps=None, batch_size=256, verbose=True):
        checks.check_int(target_per_class, "target_per_class", low=1)
        checks.check_int(random_state, "random_state", low=0)
        self.target_per_class = int(target_per_class)
        self.results_dir = Path(results_dir)
        self.random_state = int(random_state)
        self.auto_retrain = auto_retrain
        self.retrain_steps = retrain_steps
        self.batch_size = batch_size
        self.verbose = verbose
        self.results_ = {}
        self.intersection_ = None
        self.retrain_report_ = None
        self.model = None
        self.model_path = None
        self.metadata = {}
        self.data = None
        self.timings_ = {}
        if model_path is None:
            return  # from_arrays fills the state in
        from datasets import load_dataset
        from train import labels_digest, load_run, resolve_model_path

        self.model_path = resolve_model_path(model_path)
        self.model, labeled, self.metadata = load_run(self.model_path)
        if labeled_size is not None and checks.check_int(labeled_size, "labeled_size", low=1) != len(labeled):
            raise ValueError(
                f"labeled_size={labeled_size} but the model's labeled set ({self.model_path.parent / 'labeled_indices.npy'}) "
                f"has {len(labeled)} items: pass labeled_size={len(labeled)} or train a run with --labeled-size {labeled_size}"
            )
        name = dataset or self.metadata.get("dataset_source") or self.metadata.get("dataset", "digits")
        if name == "sklearn.datasets.load_digits":
            name = "digits"
        self.data = load_dataset(name, data_dir=data_dir, image_size=int(self.model.input_shape[1]))
        n_train = len(self.data.y_train)
        if self.data.n_classes != self.model.output_shape[-1]:
            raise ValueError(f"dataset {self.data.name!r} has {self.data.n_classes} classes but the model predicts {self.model.output_shape[-1]}: pass the dataset the model was trained on")
        digest = self.metadata.get("labels_digest")
        if digest is not None and digest != labels_digest(self.data.y_train):
            raise ValueError(
                f"dataset {name!r} is not the one the model was trained on ({self.metadata.get('dataset')}, "
                f"{self.metadata.get('n_train')} training items): pass that data set, or train a model on this one with `python train.py --dataset ...`"
            )
        if labeled.size and (labeled.min() < 0 or labeled.max() >= n_train):
            raise ValueError(f"labeled_indices.npy refers to items outside the dataset's {n_train} training items: was the model trained on another dataset?")
        start = 0 if start_idx is None else checks.check_int(start_idx, "start_idx", low=0, high=n_train - 1)
        end = n_train if end_idx is None else checks.check_int(end_idx, "end_idx", low=start + 1, high=n_train)
        pool = np.setdiff1d(np.arange(start, end), labeled)
        if pool.size == 0:
            raise checks.EmptyPoolError(f"the pool [{start}, {end}) holds no unlabeled items")
        if labeled.size == 0:
            raise ValueError("the model's labeled set is empty: train with `python train.py --labeled-size N`")
        self.pool_range = (start, end)
        self.indices_ = np.union1d(labeled, pool).astype(np.int64)
        self.labeled_mask_ = np.isin(self.indices_, labeled)
        self.labels_ = self.data.y_train[self.indices_].astype(np.int64)
        self.class_names = list(self.data.class_names)
        self._probs = None
        self._embeddings = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(cls, probs, embeddings, labeled_mask, labels=None, images=None, *, class_names=None,
                    target_per_class=50, results_dir="results", random_state=0, verbose=True):
        """An analyzer over outputs of any model (PyTorch, scikit-learn, an API).

        Parameters
        ----------
        probs : ndarray of shape (n_samples, n_classes)
        embeddings : ndarray of shape (n_samples, n_features); may be a memory-mapped ``.npy``
        labeled_mask : ndarray of shape (n_samples,), bool
        labels : ndarray of shape (n_samples,), int, optional; -1 where unknown
        images : ndarray of shape (n_samples, h, w, 3), optional, for figures
        class_names : list of str, optional

        Every analysis, the intersection and the class-balance report work; retraining
        is the caller's job. Indices written to disk are row numbers of these arrays.
        """
        self = cls(model_path=None, target_per_class=target_per_class, results_dir=results_dir,
                   random_state=random_state, auto_retrain=False, verbose=verbose)
        probs = checks.check_probs(probs)
        n = probs.shape[0]
        embeddings = checks.check_embeddings(embeddings, n_samples=n)
        mask = checks.check_mask(labeled_mask, n)
        if not mask.any():
            raise ValueError("labeled_mask selects no items: the labeled set is empty")
        if mask.all():
            raise checks.EmptyPoolError("labeled_mask selects every item: the pool is empty")
        if labels is None:
            labels = np.full(n, -1, dtype=np.int64)
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}")
        if labels.max(initial=-1) >= probs.shape[1] or labels.min(initial=0) < -1:
            raise ValueError(f"labels must be in [0, {probs.shape[1] - 1}] or -1 for unknown")
        if images is not None and len(images) != n:
            raise ValueError(f"images has {len(images)} items but probs has {n}")
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(probs.shape[1])]
        if len(self.class_names) != probs.shape[1]:
            raise ValueError(f"class_names has {len(self.class_names)} names but probs has {probs.shape[1]} classes")
        self.indices_ = np.arange(n, dtype=np.int64)
        self.labeled_mask_ = mask
        self.labels_ = labels.astype(np.int64)
        self._probs, self._embeddings = probs, embeddings
        self._images = images
        self.pool_range = (0, n)
        self.metadata = {"dataset": "arrays"}
        return self

    # ------------------------------------------------------------------ inference
    @property
    def n_classes(self):
        return len(self.class_names)

    @property
    def pool_mask_(self):
        return ~self.labeled_mask_

    @property
    def pool_indices_(self):
        return self.indices_[self.pool_mask_]

    @property
    def probs_(self):
        self._infer()
        return self._probs

    @property
    def embeddings_(self):
        self._infer()
        return self._embeddings

    def _log(self, message):
        progress(message, self.verbose)

    def _cache_key(self):
        st = self.model_path.stat()
        from datasets import dataset_fingerprint

        h = hashlib.sha1()
        for part in (str(self.model_path.resolve()), st.st_size, st.st_mtime_ns, dataset_fingerprint(self.data), self.indices_.tobytes()):
            h.update(str(part).encode() if not isinstance(part, bytes) else part)
        return h.hexdigest()[:16]

    def _infer(self):
        """One inference pass over labeled + pool items, cached on disk per model, data set and pool."""
        if self._probs is not None:
            return
        cache = self.results_dir / "cache" / f"inference-{self._cache_key()}.npz"
        start = time.perf_counter()
        if cache.exists():
            with np.load(cache) as z:
                self._probs, self._embeddings = z["probs"], z["embeddings"]
            self._log(f"inference: loaded from cache {cache}")
        else:
            from train import predict_with_embeddings

            self._log(f"inference: {len(self.indices_)} items through {self.model_path.name} ...")
            self._probs, self._embeddings = predict_with_embeddings(self.model, self.data.x_train[self.indices_], self.batch_size)
            with atomic_path(cache, ".npz") as tmp:
                np.savez(tmp, probs=self._probs, embeddings=self._embeddings)
        self.timings_["inference"] = round(time.perf_counter() - start, 3)
        self.export_embeddings()

    def export_embeddings(self, out_dir=None):
        """Write the GNN sidecar's input (the schema in ``gnn/export.py``) to ``out_dir``."""
        out = Path(out_dir) if out_dir else self.results_dir / "embeddings"
        return write_export(out, np.asarray(self.embeddings_, dtype=np.float32), self.probs_, self.labels_,
                            self.labeled_mask_, self.indices_, {
                                "dataset": self.metadata.get("dataset", "arrays"),
                                "model_path": str(self.model_path) if self.model_path else None,
                                "n_items": int(len(self.indices_)),
                                "n_labeled": int(self.labeled_mask_.sum()),
                                "n_classes": self.n_classes,
                                "class_names": self.class_names,
                                "pool_range": list(self.pool_range),
                            })

    @property
    def standardized_(self):
        """Embeddings standardised over labeled + pool items (distances need a common scale).

        A lazy :class:`knn.StandardizedView`: statistics are computed once, rows are
        standardised block by block as the analyses read them, so a 1M x 576 pool (or a
        memory-mapped ``.npy``) is never copied whole."""
        if getattr(self, "_standardized", None) is None:
            self._standardized = knn.StandardizedView(self.embeddings_)
        return self._standardized

    # ------------------------------------------------------------------ analyses
    def _pool_labels(self):
        """Labels of pool items: known ones where there are any, else the model's predictions."""
        known = self.labels_[self.pool_mask_]
        if (known >= 0).any():
            return known, "labels"
        return self.probs_[self.pool_mask_].argmax(axis=1), "predictions"

    def _class_distribution(self, pool_rows):
        labels, source = self._pool_labels()
        counts = alf.class_counts(labels[pool_rows], self.n_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}, source

    def _images_for(self, absolute):
        if self.data is not None:
            return self.data.x_train[absolute]
        images = getattr(self, "_images", None)
        return None if images is None else np.asarray(images[absolute])

    def _write(self, name, ranked_rows, scores, params, extra=None, figures=None, threshold=None, all_scores=None):
        """Write ``<name>_indices.npy`` (absolute, best first), ``<name>_scores.npy`` (aligned),
        summaries and figures under ``results_dir/<name>/``."""
        out = self.results_dir / name
        absolute = self.pool_indices_[ranked_rows]
        distribution, source = self._class_distribution(ranked_rows)
        summary = {
            "analysis": name,
            "dataset": self.metadata.get("dataset", "arrays"),
            "model_path": str(self.model_path) if self.model_path else None,
            "parameters": params,
            "counts": {"pool": int(self.pool_mask_.sum()), "labeled": int(self.labeled_mask_.sum()), "selected": int(len(ranked_rows))},
            "class_distribution": distribution,
            "class_source": source,
            "timings": {"seconds": self.timings_.get(name), "inference_seconds": self.timings_.get("inference")},
        }
        summary.update(extra or {})
        save_npy(out / f"{name}_indices.npy", absolute.astype(np.int64))
        save_npy(out / f"{name}_scores.npy", np.asarray(scores, dtype=np.float32))
        save_json(out / "summary.json", summary)
        flat = {k: v for k, v in summary.items() if not isinstance(v, dict)}
        sections = {"run": flat, "parameters": params, "counts": summary["counts"], f"class distribution (from {source})": distribution}
        save_text(out / "summary.txt", summary_text(f"{name} analysis", sections))
        if all_scores is not None:
            save_figure(out / "score_histogram.png", plots.score_histogram(all_scores, threshold, title=f"{name}: pool scores", xlabel=f"{name} score"))
        self._grid(out / "top_images.png", absolute[:TOP_GRID], scores[:TOP_GRID], f"{name}: top selected")
        for fname, fig in (figures or {}).items():
            save_figure(out / fname, fig)
        return out

    def _grid(self, path, absolute, scores, title):
        images = self._images_for(absolute)
        if images is None:
            return
        labels, source = self._pool_labels()
        classes = labels[np.searchsorted(self.pool_indices_, absolute)]
        caps = [f"{self.class_names[c] if c >= 0 else '?'} {s:.2f}" for c, s in zip(classes, scores)]
        save_figure(path, plots.image_grid(images, caps, title=f"{title} (class from {source}, score)"))

    def _record(self, name, mask, scores, params, seconds):
        self.results_[name] = {"mask": mask, "scores": scores, "params": params, "seconds": seconds}
        self.timings_[name] = round(seconds, 3)

    def _ranked(self, mask, scores):
        """Rows of ``mask``, best score first, seeded tie-breaking."""
        rows = np.flatnonzero(mask)
        order = alf.select_top(scores[rows], len(rows), random_state=self.random_state)
        return rows[order]

    def run_uncertainty(self, threshold_percentile=50, method="combined", write=True):
        """Keep pool items above ``threshold_percentile`` of uncertainty.

        ``method``: ``entropy``, ``margin``, ``least_confidence`` or ``combined``
        (above the percentile on entropy OR on margin).
        """
        checks.check_percentile(threshold_percentile, "threshold_percentile")
        checks.check_choice(method, "method", alf.UNCERTAINTY_METHODS)
        probs = self.probs_[self.pool_mask_]
        t = time.perf_counter()
        mask, scores = alf.uncertainty_selection(probs, threshold_percentile, method)
        params = {"threshold_percentile": threshold_percentile, "method": method}
        self._record("uncertainty", mask, scores, params, time.perf_counter() - t)
        self._log(f"uncertainty ({method}, >= p{threshold_percentile:g}): kept {mask.sum()} of {mask.size}")
        ranked = self._ranked(mask, scores)
        if write:
            self._write("uncertainty", ranked, scores[ranked], params, all_scores=scores, threshold=scores[mask].min() if mask.any() else None)
        return self.pool_indices_[ranked]

    def run_diversity(self, n_clusters=20, distance_percentile=75, algorithm="auto", write=True):
        """KMeans on standardised embeddings; keep items far from their centroid.

        Also reports each cluster's representative (the item closest to its centroid).
        """
        n_pool = int(self.pool_mask_.sum())
        checks.check_int(n_clusters, "n_clusters", low=1, high=n_pool)
        checks.check_percentile(distance_percentile, "distance_percentile")
        checks.check_choice(algorithm, "algorithm", alf.KMEANS_ALGORITHMS)
        x = self.standardized_[self.pool_mask_]
        t = time.perf_counter()
        res = alf.diversity_selection(x, n_clusters, distance_percentile, algorithm=algorithm, random_state=self.random_state, standardized=True)
        params = {"n_clusters": n_clusters, "distance_percentile": distance_percentile, "algorithm": res["algorithm"]}
        self._record("diversity", res["mask"], res["scores"], params, time.perf_counter() - t)
        reps = res["representatives"]
        self.results_["diversity"]["representatives"] = reps
        self._log(f"diversity ({n_clusters} clusters, {res['algorithm']}): kept {res['mask'].sum()} of {n_pool}")
        ranked = self._ranked(res["mask"], res["scores"])
        if write:
            rep_abs = self.pool_indices_[reps[reps >= 0]]
            save_npy(self.results_dir / "diversity" / "diversity_representatives.npy", rep_abs.astype(np.int64))
            sizes = np.bincount(res["clusters"], minlength=n_clusters)
            fig = plots.cluster_projection(x, res["clusters"], res["mask"], reps, title=f"diversity: {n_clusters} clusters (PCA)", random_state=self.random_state)
            self._write("diversity", ranked, res["scores"][ranked], params,
                        extra={"representatives": rep_abs.tolist(), "cluster_sizes": sizes.tolist()},
                        figures={"clusters_2d.png": fig}, all_scores=res["scores"],
                        threshold=res["scores"][res["mask"]].min() if res["mask"].any() else None)
        return self.pool_indices_[ranked]

    def run_novelty(self, k_neighbors=5, novelty_percentile=75, method="auto", write=True):
        """Mean distance to the ``k_neighbors`` nearest LABELED items; keep the top percentile."""
        n_labeled = int(self.labeled_mask_.sum())
        checks.check_int(k_neighbors, "k_neighbors", low=1, high=n_labeled)
        checks.check_percentile(novelty_percentile, "novelty_percentile")
        checks.check_choice(method, "method", knn.KNN_METHODS)
        t = time.perf_counter()
        mask, scores = alf.novelty_selection(self.standardized_, self.labeled_mask_, k_neighbors, novelty_percentile,
                                             method=method, random_state=self.random_state, standardized=True)
        params = {"k_neighbors": k_neighbors, "novelty_percentile": novelty_percentile, "method": method}
        self._record("novelty", mask, scores, params, time.perf_counter() - t)
        self._log(f"novelty (k={k_neighbors}, >= p{novelty_percentile:g}): kept {mask.sum()} of {mask.size}")
        ranked = self._ranked(mask, scores)
        if write:
            self._write("novelty", ranked, scores[ranked], params, all_scores=scores,
                        threshold=scores[mask].min() if mask.any() else None)
        return self.pool_indices_[ranked]

    def run_all(self, uncertainty_params=None, diversity_params=None, novelty_params=None):
        """Run the three analyses; each ``*_params`` dict is passed to its ``run_*`` method."""
        self.run_uncertainty(**(uncertainty_params or {}))
        self.run_diversity(**(diversity_params or {}))
        self.run_novelty(**(novelty_params or {}))
        return {name: int(self.results_[name]["mask"].sum()) for name in ANALYSES}

    def run_gnn(self, **params):
        """Run the GraphSAGE sidecar in-process on the exported embeddings (see ``gnn.run_gnn``)."""
        import gnn  # torch is imported only here: the Keras path never needs it

        self._infer()
        emb_dir = self.export_embeddings()
        params.setdefault("seed", self.random_state)
        params.setdefault("progress", self.verbose)
        t = time.perf_counter()
        res = gnn.run_gnn(emb_dir, self.results_dir / "gnn", **params)
        scores = np.asarray(res["scores"], dtype=np.float64)
        mask = np.zeros(scores.shape[0], dtype=bool)
        mask[np.searchsorted(self.pool_indices_, res["indices"])] = True
        self._record("gnn", mask, scores, {k: v for k, v in params.items() if k != "progress"}, time.perf_counter() - t)
        return res

    # ------------------------------------------------------------------ named strategies
    def select(self, strategy, budget, params=None, write=True):
        """Pick ``budget`` pool items with a named strategy from ``strategies.py``.

        ``random``, ``entropy``, ``margin``, ``least_confidence``, ``intersection``,
        ``uncertainty_clustering``, ``gnn``, ``modal_entropy``, ``modal_ranked_batch``, and
        subpool composites such as ``anchoral_entropy``, ``seals_margin`` or
        ``randsub_entropy`` (AnchorAL / SEALS / random subpool, then the base strategy).
        ``params`` holds per-strategy options, e.g. ``{'anchoral': {'num_anchors': 20}}``.
        Writes ``results_dir/select_<strategy>/`` (indices best first; scores are
        ``1 - position / budget``, as strategies return an order, not a score).

        Returns
        -------
        indices : ndarray of shape (budget,), int64, absolute data set indices
        """
        import strategies

        checks.check_int(budget, "budget", low=1, high=int(self.pool_mask_.sum()))
        strategies.get_strategy(strategy)  # validate the name before any work
        head = None
        if self.model is not None:
            head = tuple(self.model.get_layer("predictions").get_weights())
        # Strategies see labels of labeled rows only: the same contract as the benchmark's oracle.
        ctx = strategies.SelectionContext(probs=self.probs_, embeddings=self.embeddings_, labeled_mask=self.labeled_mask_,
                                          labels=np.where(self.labeled_mask_, self.labels_, -1), head=head, params=dict(params or {}))
        t = time.perf_counter()
        rows = strategies.select(strategy, ctx, budget, random_state=self.random_state)
        seconds = time.perf_counter() - t
        pool_rows = np.searchsorted(self.pool_indices_, self.indices_[rows])
        name = f"select_{strategy}"
        self.timings_[name] = round(seconds, 3)
        self._log(f"{strategy}: selected {budget} of {int(self.pool_mask_.sum())} pool items in {seconds:.2f} s")
        if write:
            self._write(name, pool_rows, 1.0 - np.arange(budget) / budget, {"strategy": strategy, "budget": budget, "params": dict(params or {})})
        return self.indices_[rows]

    # ------------------------------------------------------------------ intersection
    def find_intersection(self, budget=None, use_gnn=False, retrain="auto", write=True):
        """Intersect uncertainty, diversity and novelty (and the GNN selection), ranked by a combined score.

        Analyses not run yet run with their defaults. With a ``budget`` larger than the
        intersection, the selection is filled up by combined rank (the summary says so).
        When ``retrain='auto'``, a Keras model is loaded and every class reaches
        ``target_per_class``, the model is retrained on the class-balanced selection.

        Returns
        -------
        indices : ndarray of int64, absolute data set indices, best first
        stats : dict
        """
        checks.check_choice(retrain, "retrain", ("auto", True, False))
        if budget is not None:
            checks.check_int(budget, "budget", low=1, high=int(self.pool_mask_.sum()))
        for name in ANALYSES:
            if name not in self.results_:
                getattr(self, f"run_{name}")()
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
        stats = dict(info, budget=budget, analyses=names, class_balance=balance)
        if info["n_intersection"] == 0:
            stats["note"] = "the intersection is empty" + (f"; filled with {info['n_filled']} items by combined rank" if info["n_filled"] else "; pass budget= to fill by combined rank")
        elif info["filled"]:
            stats["note"] = f"intersection has {info['n_intersection']} items; filled up to the budget of {budget} by combined rank"
        self._log(f"intersection of {' & '.join(names)}: {info['n_intersection']} items, {len(rows)} selected")
        if write:
            fig = plots.overlap_bars(info["counts"], info["pairwise"], info["n_intersection"], title="items kept per analysis and overlap")
            self._write("intersection", rows, combined[rows], {"budget": budget, "analyses": names},
                        extra={k: stats[k] for k in ("n_intersection", "n_filled", "filled", "pairwise", "class_balance", "note") if k in stats},
                        figures={"overlap.png": fig})
        do_retrain = self.model is not None and balance["met"] and (retrain is True or (retrain == "auto" and self.auto_retrain))
        if do_retrain:
            stats["retrain"] = self.retrain()
        return absolute, stats

    # ------------------------------------------------------------------ class balance
    def _selection(self):
        if self.intersection_ is None:
            raise ValueError("no selection yet: call find_intersection() first")
        return self.intersection_

    def check_class_balance(self):
        """Per-class counts of the selection against ``target_per_class`` (known labels, else predictions)."""
        rows = self._selection()["rows"]
        labels, source = self._pool_labels()
        sel = labels[rows]
        if source == "labels" and (sel < 0).any():
            # Mixed pools: unknown labels fall back to the predicted class for the count.
            pred = self.probs_[self.pool_mask_][rows].argmax(axis=1)
            sel = np.where(sel >= 0, sel, pred)
            source = "labels+predictions"
        bal = alf.class_balance(sel, self.n_classes, self.target_per_class)
        bal["source"] = source
        bal["classes"] = self.class_names
        return bal

    def export_labeling_csv(self, path=None):
        """Write the selection as ``index,label,predicted_class,confidence,image`` for a person to fill in.

        ``image`` is the source file where the data set has one, else a thumbnail written beside the CSV.
        """
        sel = self._selection()
        path = Path(path) if path else self.results_dir / "intersection" / "to_label.csv"
        probs = self.probs_[self.pool_mask_][sel["rows"]]
        paths = getattr(self.data, "train_paths", None) if self.data is not None else None
        images = None if paths else self._images_for(sel["indices"])
        thumbs = path.parent / "thumbnails"
        with atomic_path(path, ".csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "label", "predicted_class", "confidence", "image"])
            for i, (a, p) in enumerate(zip(sel["indices"], probs)):
                if paths:
                    image = paths[a]
                elif images is not None:
                    from PIL import Image

                    thumbs.mkdir(parents=True, exist_ok=True)
                    image = str(thumbs / f"{a}.png")
                    Image.fromarray(np.asarray(images[i], dtype=np.uint8)).save(image)
                else:
                    image = ""
                w.writerow([int(a), "", self.class_names[int(p.argmax())], f"{p.max():.4f}", image])
        return path

    def load_labels_csv(self, path):
        """Read ``index,label`` rows a person filled in (label: class name or id) into the pool's labels."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"labels CSV {str(path)!r} does not exist")
        pos = {int(a): r for r, a in enumerate(self.indices_)}
        name_to_id = {n: i for i, n in enumerate(self.class_names)}
        updates = {}
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"index", "label"} <= set(reader.fieldnames):
                raise ValueError(f"labels CSV {str(path)!r} needs the columns 'index' and 'label', got {reader.fieldnames}")
            for line, row in enumerate(reader, start=2):
                label = (row["label"] or "").strip()
                if not label:
                    continue
                try:
                    idx = int(row["index"])
                except ValueError:
                    raise ValueError(f"labels CSV line {line}: index {row['index']!r} is not an integer") from None
                if idx not in pos or self.labeled_mask_[pos[idx]]:
                    raise ValueError(f"labels CSV line {line}: index {idx} is not in the pool (allowed: the pool's data set indices, see to_label.csv)")
                if label in name_to_id:
                    cls = name_to_id[label]
                elif label.lstrip("-").isdigit() and 0 <= int(label) < self.n_classes:
                    cls = int(label)
                else:
                    raise ValueError(f"labels CSV line {line}: label {label!r} is not a class; allowed: {self.class_names} or 0-{self.n_classes - 1}")
                updates[pos[idx]] = cls
        for r, c in updates.items():
            self.labels_[r] = c
        return len(updates)

    # ------------------------------------------------------------------ retraining
    def retrain(self, output_dir=None, allow_shortfall=False, steps=None, compare_random=True):
        """Add up to ``target_per_class`` items per class from the ranked selection, retrain, save, compare.

        The new model is trained exactly like the comparison model on a random
        selection of the same size and seed (same steps, seed and validation split).

        Returns
        -------
        dict with ``added``, ``accuracy_before``, ``accuracy_after``, ``accuracy_random``,
        macro-F1s and the run folder.
        """
        if self.model is None:
            raise ValueError("retrain needs a Keras model (analyzer built with model_path); with from_arrays, retraining is the caller's job")
        from train import evaluate, train_classifier, save_run

        sel = self._selection()
        balance = self.check_class_balance()
        if not balance["met"] and not allow_shortfall:
            short = {n: s for n, s in zip(self.class_names, balance["shortfall"]) if s}
            raise ValueError(f"class targets not met (shortfall per class: {short}); lower target_per_class, raise the budget, or pass allow_shortfall=True")
        labels = self.labels_[self.pool_mask_][sel["rows"]]
        if (labels < 0).all():
            raise ValueError("the selected items have no labels: fill in the CSV from export_labeling_csv() and call load_labels_csv(path)")
        picked_rows = sel["rows"][labels >= 0]
        picked = alf.balanced_pick(picked_rows, self.labels_[self.pool_mask_][picked_rows], self.n_classes, self.target_per_class)
        added = self.pool_indices_[picked]
        base_labeled = self.indices_[self.labeled_mask_]
        known_pool = self.pool_indices_[self.labels_[self.pool_mask_] >= 0]
        rng = np.random.RandomState(self.random_state)
        random_added = np.sort(rng.choice(known_pool, size=len(added), replace=False))
        steps = steps or self.retrain_steps or int(self.metadata.get("steps_budget") or 800)
        arch = self.metadata.get("arch", "mobilenetv3")
        seed = int(self.metadata.get("seed", self.random_state))
        x = self.data.x_train
        # Labels a person supplied through the CSV overrule the data set's (unknown) ones.
        y = self.data.y_train.copy()
        y[self.indices_] = np.where(self.labels_ >= 0, self.labels_, y[self.indices_])
        has_test = self.data.x_test is not None and self.data.y_test is not None
        before = evaluate(self.model, self.data.x_test, self.data.y_test) if has_test else {}

        def fit(extra, what):
            lab = np.union1d(base_labeled, extra)
            self._log(f"retrain ({what}): {len(lab)} labeled items, {steps} steps ...")
            model, info = train_classifier(x[lab], y[lab], self.n_classes, arch=arch, seed=seed, steps=steps, verbose=0)
            return lab, model, info, (evaluate(model, self.data.x_test, self.data.y_test) if has_test else {})

        t = time.perf_counter()
        lab, model, info, after = fit(added, "selection")
        rand = fit(random_added, "random, same size")[3] if compare_random and has_test else {}
        run = Path(output_dir) if output_dir else self.model_path.parent.with_name(self.model_path.parent.name + "_retrained")
        meta = dict(self.metadata, labeled_size=int(len(lab)), parent_run=str(self.model_path.parent), added=added.tolist(),
                    epochs=info["epochs"], steps=info["steps"], validation_accuracy=info["best_val_accuracy"],
                    test_accuracy=after.get("accuracy"), test_macro_f1=after.get("macro_f1"),
                    train_seconds=info["train_seconds"], created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        save_run(model, run, lab, meta)
        report = {
            "added": int(len(added)),
            "added_per_class": dict(zip(self.class_names, alf.class_counts(y[added], self.n_classes).tolist())),
            "target_met": balance["met"],
            "labeled_before": int(len(base_labeled)),
            "labeled_after": int(len(lab)),
            "accuracy_before": before.get("accuracy"),
            "accuracy_after": after.get("accuracy"),
            "accuracy_random": rand.get("accuracy"),
            "macro_f1_before": before.get("macro_f1"),
            "macro_f1_after": after.get("macro_f1"),
            "macro_f1_random": rand.get("macro_f1"),
            "seed": seed,
            "steps": steps,
            "model_path": str(run / "best_model.keras"),
            "seconds": round(time.perf_counter() - t, 1),
        }
        self.retrain_report_ = report
        save_json(self.results_dir / "retrain" / "summary.json", report)
        save_text(self.results_dir / "retrain" / "summary.txt", summary_text("retraining on the class-balanced selection", {"report": {k: v for k, v in report.items() if not isinstance(v, dict)}, "added per class": report["added_per_class"]}))
        return report

    # ------------------------------------------------------------------ report
    def get_summary(self):
        """A short plain-text report of everything run so far."""
        lines = [f"Active-learning analysis: {self.metadata.get('dataset', 'arrays')}, "
                 f"{int(self.labeled_mask_.sum())} labeled, pool of {int(self.pool_mask_.sum())} items"]
        for name in ANALYSES + ("gnn",):
            if name in self.results_:
                r = self.results_[name]
                params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
                lines.append(f"  {name:<12} kept {int(r['mask'].sum()):>7} ({params}; {r['seconds']:.2f} s)")
        if self.intersection_ is not None:
            info = self.intersection_["info"]
            line = f"  intersection {info['n_intersection']:>7} items in all analyses, {info['n_selected']} selected"
            if info["n_filled"]:
                line += f" ({info['n_filled']} filled by combined rank)"
            elif info["n_intersection"] == 0:
                line += " (empty: pass budget= to fill by combined rank)"
            lines.append(line)
            bal = self.check_class_balance()
            lines.append(f"  class balance (target {self.target_per_class} per class, from {bal['source']}): "
                         + ("met" if bal["met"] else f"short in {sum(1 for s in bal['shortfall'] if s)} classes"))
            for name, c, s in zip(self.class_names, bal["counts"], bal["shortfall"]):
                lines.append(f"    {name:>12}: {c:>5}" + (f"  (short {s})" if s else ""))
        r = self.retrain_report_
        if r:
            def fmt(v):
                return "n/a" if v is None else f"{v:.3f}"
            lines.append(f"  retrained on {r['labeled_before']} + {r['added']} items ({r['steps']} steps, seed {r['seed']}): "
                         f"test accuracy {fmt(r['accuracy_before'])} -> {fmt(r['accuracy_after'])}, "
                         f"random selection of the same size {fmt(r['accuracy_random'])}")
            lines.append(f"    macro-F1 {fmt(r['macro_f1_before'])} -> {fmt(r['macro_f1_after'])} (random {fmt(r['macro_f1_random'])}); model: {r['model_path']}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- command lines
def analyzer_parser(description):
    """Arguments every script shares: model, data, pool range, seed, results folder."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL.relative_to(REPO)), help="base model (.keras or run folder); the default is trained first if missing")
    p.add_argument("--dataset", default=None, help="data set (default: the model's): 'digits', 'cifar10' or a path (CIFAR-10 pickle folder, ROOT/{train,test}/<class>/ image tree, .npz, .tar.gz of a tree)")
    p.add_argument("--data-dir", default=None, help="folder holding the 'cifar10' data")
    p.add_argument("--labeled-size", type=int, default=None, help="expected size of the model's labeled set; also the size drawn when the default model is trained (500)")
    p.add_argument("--start-idx", type=int, default=None, help="pool starts at this training index (default 0)")
    p.add_argument("--end-idx", type=int, default=None, help="pool ends before this training index (default: all)")
    p.add_argument("--target-per-class", type=int, default=20, help="items per class wanted before retraining")
    p.add_argument("--seed", type=int, default=0, help="random state of every stochastic step")
    p.add_argument("--results-dir", default="results", help="where results are written")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def analyzer_from_args(args):
    """Build the analyzer a script asked for, training the default base model first if it is missing."""
    model = Path(args.model)
    if not model.is_absolute():
        model = REPO / model if not model.exists() else model
    if not model.exists() and model.resolve() in (DEFAULT_MODEL, DEFAULT_MODEL.parent):
        from train import train_base_model

        progress("no base model yet: training the default one (models/500_train) ...", not args.quiet)
        train_base_model(args.dataset or "digits", args.data_dir, labeled_size=args.labeled_size or 500, seed=args.seed,
                         out_dir=DEFAULT_MODEL.parent, verbose=0 if args.quiet else 2)
    return ActiveLearningAnalyzer(model, labeled_size=args.labeled_size, start_idx=args.start_idx, end_idx=args.end_idx,
                                  target_per_class=args.target_per_class, dataset=args.dataset, data_dir=args.data_dir,
                                  results_dir=args.results_dir, random_state=args.seed,
                                  retrain_steps=getattr(args, "steps", None), verbose=not args.quiet)


def add_uncertainty_args(p):
    p.add_argument("--uncertainty-method", default="combined", choices=alf.UNCERTAINTY_METHODS, help="combined = above the percentile on entropy OR margin")
    p.add_argument("--threshold-percentile", type=float, default=50, help="uncertainty: keep items at or above this percentile (0-100)")


def add_diversity_args(p):
    p.add_argument("--n-clusters", type=int, default=20, help="diversity: KMeans clusters")
    p.add_argument("--distance-percentile", type=float, default=75, help="diversity: keep items at or above this percentile of distance to their centroid")
    p.add_argument("--kmeans", default="auto", choices=alf.KMEANS_ALGORITHMS, help="KMeans variant (auto: full KMeans up to 20k items, MiniBatchKMeans above)")


def add_novelty_args(p):
    p.add_argument("--k-neighbors", type=int, default=5, help="novelty: nearest labeled items averaged")
    p.add_argument("--novelty-percentile", type=float, default=75, help="novelty: keep items at or above this percentile (0-100)")
    p.add_argument("--knn", default="auto", choices=knn.KNN_METHODS, help="nearest-neighbour search (auto: NumPy exact up to 1e8 pairs, then faiss exact or hnswlib by a measured cost model; see knn.knn_method_for)")


def uncertainty_params(args):
    return {"threshold_percentile": args.threshold_percentile, "method": args.uncertainty_method}


def diversity_params(args):
    return {"n_clusters": args.n_clusters, "distance_percentile": args.distance_percentile, "algorithm": args.kmeans}


def novelty_params(args):
    return {"k_neighbors": args.k_neighbors, "novelty_percentile": args.novelty_percentile, "method": args.knn}


# analysis -> (adds its arguments to a parser, turns parsed arguments into run_<analysis> keywords)
ANALYSIS_ARGS = {
    "uncertainty": (add_uncertainty_args, uncertainty_params),
    "diversity": (add_diversity_args, diversity_params),
    "novelty": (add_novelty_args, novelty_params),
}


def add_all_analysis_args(p):
    """Arguments of uncertainty, diversity and novelty together (main job, intersection script)."""
    for add_args, _ in ANALYSIS_ARGS.values():
        add_args(p)


def run_all_from_args(an, args):
    return an.run_all(uncertainty_params(args), diversity_params(args), novelty_params(args))


def analysis_main(analysis, description, argv=None):
    """Body of a standalone analysis script: parse, build the analyzer, run one analysis, report."""
    add_args, params = ANALYSIS_ARGS[analysis]
    p = analyzer_parser(description)
    add_args(p)
    args = p.parse_args(argv)
    an = analyzer_from_args(args)
    getattr(an, f"run_{analysis}")(**params(args))
    print(an.get_summary())
    print(f"  written to {Path(args.results_dir) / analysis}/")


def build_parser():
    p = analyzer_parser("Main job: train the default base model if missing, run uncertainty, diversity and novelty, "
                        "their intersection, the class-balance check and the retraining, and print a report.")
    add_all_analysis_args(p)
    p.add_argument("--budget", type=int, default=None, help="selection size (default: 2 x target x classes, capped at the pool)")
    p.add_argument("--steps", type=int, default=None, help="training steps for retraining (default: the base model's)")
    p.add_argument("--no-retrain", action="store_true", help="stop after the class-balance check")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    an = analyzer_from_args(args)
    budget = args.budget or min(int(an.pool_mask_.sum()), 2 * args.target_per_class * an.n_classes)
    run_all_from_args(an, args)
    an.find_intersection(budget=budget, retrain=False)
    an.export_labeling_csv()
    if not args.no_retrain:
        if not an.check_class_balance()["met"]:
            progress("class targets not met: retraining on the partial class-balanced selection", not args.quiet)
        an.retrain(allow_shortfall=True)
    print(an.get_summary())
    print(f"  results in {args.results_dir}/ ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
