"""Pool state: which items are looked at, which are labeled, and the labels known so far.

Kept apart from the analyzer that scores the pool and from the model that is trained
on it (as baal keeps ``labelled_map`` apart from heuristics and the loop), so a
labeling project can rebuild it from its label store each round.
"""
from dataclasses import dataclass

import numpy as np

from labelnext import heuristics as alf
from labelnext.utils import checks


@dataclass
class Pool:
    """Labeled and unlabeled items of one data set.

    Parameters
    ----------
    indices : ndarray of shape (n_items,), int64
        Absolute data set indices of labeled + pool items, sorted.
    labeled_mask : ndarray of shape (n_items,), bool
    labels : ndarray of shape (n_items,), int64
        Known labels, -1 where unknown.
    class_names : list of str
    pool_range : tuple (start, end)
        The data set indices the pool was drawn from.
    """

    indices: np.ndarray
    labeled_mask: np.ndarray
    labels: np.ndarray
    class_names: list
    pool_range: tuple

    @classmethod
    def from_labeled_set(cls, labeled, y_train, class_names, start_idx=None, end_idx=None):
        """Labeled set plus every other training item in ``[start_idx, end_idx)``.

        Parameters
        ----------
        labeled : ndarray of int64, absolute indices of the labeled set
        y_train : ndarray of shape (n_train,), int; labels of the training split (-1 = unknown)
        class_names : list of str
        start_idx, end_idx : int or None; default the whole training split
        """
        n_train = len(y_train)
        start = 0 if start_idx is None else checks.check_int(start_idx, "start_idx", low=0, high=n_train - 1)
        end = n_train if end_idx is None else checks.check_int(end_idx, "end_idx", low=start + 1, high=n_train)
        pool = np.setdiff1d(np.arange(start, end), labeled)
        if pool.size == 0:
            raise checks.EmptyPoolError(f"the pool [{start}, {end}) holds no unlabeled items")
        if labeled.size == 0:
            raise ValueError("the model's labeled set is empty: train with `python train.py --labeled-size N`")
        indices = np.union1d(labeled, pool).astype(np.int64)
        return cls(indices, np.isin(indices, labeled), np.asarray(y_train)[indices].astype(np.int64),
                   list(class_names), (start, end))

    @classmethod
    def from_mask(cls, labeled_mask, labels=None, class_names=None, *, n_classes):
        """Rows ``0..n-1`` of arrays a caller holds; ``labels`` -1 (or None) where unknown."""
        n = len(labeled_mask)
        mask = checks.check_mask(labeled_mask, n)
        if not mask.any():
            raise ValueError("labeled_mask selects no items: the labeled set is empty")
        if mask.all():
            raise checks.EmptyPoolError("labeled_mask selects every item: the pool is empty")
        labels = np.full(n, -1, dtype=np.int64) if labels is None else np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}")
        if labels.max(initial=-1) >= n_classes or labels.min(initial=0) < -1:
            raise ValueError(f"labels must be in [0, {n_classes - 1}] or -1 for unknown")
        names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
        if len(names) != n_classes:
            raise ValueError(f"class_names has {len(names)} names but probs has {n_classes} classes")
        return cls(np.arange(n, dtype=np.int64), mask, labels.astype(np.int64), names, (0, n))

    @property
    def pool_mask(self):
        return ~self.labeled_mask

    @property
    def pool_indices(self):
        return self.indices[self.pool_mask]

    @property
    def n_classes(self):
        return len(self.class_names)

    def set_labels(self, labels):
        """Record labels given to items: ``{absolute index: class id}``."""
        for index, cls in labels.items():
            self.labels[np.searchsorted(self.indices, index)] = cls

    def pool_labels(self, pool_probs):
        """Labels of pool items: known ones where there are any, else the predicted class.

        Parameters
        ----------
        pool_probs : ndarray of shape (n_pool, n_classes), the model's probabilities of pool items

        Returns
        -------
        labels : ndarray of shape (n_pool,), int
        source : {'labels', 'predictions'}
        """
        known = self.labels[self.pool_mask]
        if (known >= 0).any():
            return known, "labels"
        return pool_probs.argmax(axis=1), "predictions"

    def class_balance(self, rows, pool_probs, target_per_class):
        """Per-class counts of pool rows ``rows`` against ``target_per_class`` (known labels, else
        predictions; see :func:`AL_functions.class_balance`), with ``source`` and ``classes``."""
        labels, source = self.pool_labels(pool_probs)
        sel = labels[rows]
        if source == "labels" and (sel < 0).any():
            # Mixed pools: unknown labels fall back to the predicted class for the count.
            sel = np.where(sel >= 0, sel, pool_probs[rows].argmax(axis=1))
            source = "labels+predictions"
        bal = alf.class_balance(sel, self.n_classes, target_per_class)
        bal["source"] = source
        bal["classes"] = self.class_names
        return bal
