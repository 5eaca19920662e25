"""The learner chosen by measurement: ``--arch auto`` (the benchmark's ``--model auto``).

No single learner wins everywhere: on pretrained CIFAR-10 features label spreading led the others
up to 5 labels per class and ``blend`` (its vote averaged with a logistic regression) from 10 per
class; on the letter table the MLP beat the logistic regression by 0.12 (docs/BENCHMARKS.md,
"Which learner"). :class:`LearnerChoice` answers per round, on the labels that train, by
stratified k-fold cross-validation of each candidate under the round's own recipe
(:class:`loop.round.RoundTrainer`) and :func:`pick`, then fits the pick on every label.
Evaluation items (the audit) never reach it: the caller passes only the rows that train.

The choice is made again every round, since the answer moves with the number of labels, and
recorded (``info_['learner']``: the pick, each candidate's fold accuracy, and why).
"""
import math
import time

import numpy as np
from sklearn.model_selection import StratifiedKFold

from labelnext.training.backbones import adapts_on_pool

# Folds of the cross-validation (fewer when the rarest class has fewer labels).
FOLDS = 3
# Below this many labels of every class in the fold split, there is nothing to measure: the first
# candidate (the one measured best at few labels) trains.
MIN_PER_CLASS = 2


def candidates_for(kind_info, features):
    """The learners ``auto`` compares on ``features`` of data of a kind, the one to train below
    :data:`MIN_PER_CLASS` labels per class first: on pretrained features label spreading and
    ``blend`` (the logistic regression alone and the MLP were never ahead there); on other feature
    vectors (label-free features, embeddings) label spreading, the logistic regression and the MLP;
    on tables the logistic regression and the MLP; one learner (nothing to choose) for raw images
    and text."""
    if features == "pretrained":
        return ("spread", "blend")
    if features != "raw":
        return ("spread", "logreg", "mlp")
    if "logreg" in kind_info.models:
        return ("logreg", "mlp")
    return (kind_info.default_model,)


def folds_for(y, folds=FOLDS):
    """The folds of a cross-validation on the labels ``y``: ``folds``, fewer when the rarest class has fewer
    labels (below :data:`MIN_PER_CLASS` there is nothing to measure)."""
    return min(folds, int(np.bincount(y)[np.unique(y)].min()))


def fold_correct(trainer, x, y, folds, random_state=0):
    """Per labeled item, whether ``trainer`` fitted on the other stratified folds predicts it right,
    the item held out as unseen (:meth:`training.trainer.Trainer.predict_held_out`)."""
    right = np.zeros(len(y), bool)
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y):
        trainer.fit(x[train], y[train], random_state)
        right[held] = trainer.predict_held_out(x[held]).argmax(axis=1) == y[held]
    return right


def pick(candidates, scores, n, by_steps):
    """The learner to train from cross-validated accuracies ``scores`` on ``n`` labels.

    Where a candidate trains by optimiser steps (``by_steps``: the MLP), the one-standard-error
    rule (Breiman, Friedman, Olshen & Stone 1984, "Classification and Regression Trees"): the first
    (simplest) candidate within one standard error of the best's accuracy, the standard error of an
    accuracy on ``n`` items. On CIFAR-10 the plain best of the folds switched to the MLP on fold
    noise at 50 and 100 labels and lost 0.09 and 0.05 test accuracy there.

    Between learners fitted to convergence (``spread``, ``blend``, ``logreg``: no steps, no seed)
    the best of the folds. There the rule kept ``spread`` where ``blend`` was ahead on CIFAR-10's
    test sets, by 0.008-0.012 at 200-500 labels (docs/BENCHMARKS.md, "Which learner"): the folds
    train on two thirds of the labels, where the vote alone does relatively better.

    Returns
    -------
    pick : str
    se : float or None
        The standard error the rule used; None for the best of the folds.
    """
    best = max(scores[a] for a in candidates)
    if not by_steps:
        return next(a for a in candidates if scores[a] == best), None
    se = math.sqrt(best * (1 - best) / n)
    return next(a for a in candidates if scores[a] >= best - se - 1e-12), se


class LastFit:
    """What a round trainer answers after a fit: its last fit's trainer (``_current``) answers it."""

    _current = None
    # Inference batch of predict when the caller gives none; None: the fitted trainer's own.
    predict_batch = None

    def _fitted(self):
        if self._current is None:
            raise RuntimeError(f"call {type(self).__name__}.fit before predict")
        return self._current

    @property
    def model_(self):
        """The Keras model of the last fit."""
        return self._fitted().model_

    def predict(self, x, batch_size=None):
        """Probabilities (n, n_classes) and embeddings (n, n_features) of the last fit's model."""
        batch_size = batch_size or self.predict_batch
        fitted = self._fitted()
        return fitted.predict(x) if batch_size is None else fitted.predict(x, batch_size=batch_size)

    def predict_held_out(self, x):
        """The last fit's :meth:`training.trainer.Trainer.predict_held_out`."""
        return self._fitted().predict_held_out(x)

    def head(self):
        return self._fitted().head()

    def dropout_rate(self):
        return self._fitted().dropout_rate()

    def get_weights(self):
        return self._fitted().get_weights()


class LearnerChoice(LastFit):
    """A :class:`loop.round.RoundTrainer` look-alike that picks its learner at every fit.

    Parameters
    ----------
    make : callable ``(arch) -> RoundTrainer``
        A round trainer of one candidate, with the round's recipe.
    candidates : tuple of str
        Learner names, the simplest first: :func:`pick` picks among them.
    folds : int

    Attributes
    ----------
    arch_ : str
        The learner of the last fit.
    info_ : dict
        The winner's fit record plus ``learner``: ``{'arch', 'cv_accuracy', 'folds', 'reason', 'cv_seconds'}``.
    """

    def __init__(self, make, candidates, *, folds=FOLDS, features="raw"):
        if not candidates:
            raise ValueError("auto needs at least one candidate learner")
        self._make, self.candidates, self.folds, self.features = make, tuple(candidates), int(folds), features
        first = make(self.candidates[0])
        self.steps, self.batch_size, self.epochs_per_fit = first.steps, first.batch_size, first.epochs_per_fit
        self._seed = self._current = None
        self._kept = {}

    def steps_for(self, n_labeled):
        return None  # the learner, hence the fit's length, is decided by the fit

    def start(self, random_state, *, adapt=None, weights_file=None):
        """Keep the seed and the pool (``adapt``: every item's inputs); each fit starts its candidates."""
        self._seed, self._pool, self._current, self._kept = random_state, adapt, None, {}
        return self

    def _started(self, arch, x):
        # Preprocessing as adapt_data fits it: on the whole pool (then one trainer serves every fit
        # of this seed), or on the rows that train (then one serves the folds and the fit on them).
        on_pool = adapts_on_pool(arch, self.features)
        key = arch if on_pool else (arch, id(x))
        if key not in self._kept:
            self._kept[key] = self._make(arch).start(self._seed, adapt=self._pool if on_pool else x)
        return self._kept[key]

    def choose(self, x, y, random_state=0):
        """The learner for ``x``, ``y``: (arch, {arch: mean fold accuracy}, folds, reason)."""
        y = np.asarray(y, dtype=np.int64)
        if len(self.candidates) == 1:
            return self.candidates[0], {}, 0, "the only learner for these inputs"
        folds = folds_for(y, self.folds)
        if folds < MIN_PER_CLASS:
            return (self.candidates[0], {}, 0,
                    f"a class has fewer than {MIN_PER_CLASS} labels, too few to cross-validate: the first candidate")
        scores = {arch: int(fold_correct(self._started(arch, x), x, y, folds, random_state).sum()) / len(y)
                  for arch in self.candidates}
        by_steps = any(self._started(a, x).steps_for(len(y)) is not None for a in self.candidates)
        arch, se = pick(self.candidates, scores, len(y), by_steps)
        ranked = ", ".join(f"{a} {scores[a]:.3f}" for a in self.candidates)
        if se is None:
            return arch, scores, folds, f"{folds}-fold accuracy on {len(y)} labels: {ranked}: {arch}, the best"
        why = "the best" if scores[arch] == max(scores.values()) else "the simplest within one standard error of the best"
        return arch, scores, folds, f"{folds}-fold accuracy on {len(y)} labels: {ranked} (standard error {se:.3f}): " \
                                    f"{arch}, {why}"

    def fit(self, x, y, random_state=0, *, start_weights=None):
        if self._seed is None:
            raise RuntimeError("call LearnerChoice.start(random_state) before fit")
        start = time.perf_counter()
        # Trainers adapted to an earlier fit's rows are of no further use.
        self._kept = {k: t for k, t in self._kept.items() if isinstance(k, str)}
        arch, scores, folds, reason = self.choose(x, y, random_state)
        cv_seconds = round(time.perf_counter() - start, 2)
        self._current = self._started(arch, x).fit(x, y, random_state)
        self.arch_ = arch
        self.info_ = dict(self._current.info_, learner={"arch": arch, "cv_accuracy": scores, "folds": folds,
                                                        "reason": reason, "cv_seconds": cv_seconds})
        return self
