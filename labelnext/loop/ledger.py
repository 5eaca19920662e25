"""What every round of a project keeps account of, whether its pool is in memory
(:meth:`loop.project.LabelingProject.run_round`) or streamed from shards (:mod:`loop.sharded`):
which items train and which may be picked, the stopping signal against the last round, and how
the round is entered in the store."""
from dataclasses import dataclass

import numpy as np

from labelnext.loop.evaluation import agreement, stop_set
from labelnext.utils.checks import check_int


class ProjectError(ValueError):
    """A project command cannot run as asked; the message says what to do instead."""


@dataclass(frozen=True)
class RoundRows:
    """The items of a round about to run.

    Attributes
    ----------
    labels : ndarray of int, the store's labels (-1: none)
    done : list of dict, the finished rounds
    audited : ndarray of int, every item the finished rounds drew for the audit
    train_labels : ndarray of int, ``labels`` without the audit items' (the yardstick never trains)
    selectable : ndarray of bool, unlabeled items never drawn for the audit
    """

    labels: np.ndarray
    done: list
    audited: np.ndarray
    train_labels: np.ndarray
    selectable: np.ndarray

    @property
    def n_pool(self):
        return int(self.selectable.sum())


def round_rows(project, budget):
    """:class:`RoundRows` of ``project``'s next round, refused (:class:`ProjectError`) when nothing is left
    to pick, ``budget`` does not fit the pool, or fewer than 2 classes would train."""
    labels = project.store.label_array()
    done = project.rounds()
    audited = project._audit_rows(done)
    train_labels = labels.copy()
    train_labels[audited] = -1
    selectable = labels < 0
    selectable[audited] = False
    rows = RoundRows(labels, done, audited, train_labels, selectable)
    if rows.n_pool == 0:
        raise ProjectError("every item is labeled: the pool is empty, nothing left to select")
    check_int(budget, "--budget", low=1, high=rows.n_pool)
    if len(np.unique(train_labels[train_labels >= 0])) < 2:
        raise ProjectError("the store has labels of fewer than 2 classes; label more items first")
    return rows


def stop_signal(previous_folder, probs, seed):
    """The predictions on the fixed stop set (:func:`evaluation.stop_set`) and their agreement with the
    previous round's (None without one): ``(stop_predictions, kappa)``."""
    predictions = np.asarray(probs[stop_set(len(probs), seed)]).argmax(axis=1)
    before = None if previous_folder is None else previous_folder / "stop_predictions.npy"
    kappa = agreement(np.load(before), predictions) if before is not None and before.is_file() else None
    return predictions, kappa


def previous_summary(previous):
    """What ``round.json`` keeps of the previous round (None for the first)."""
    return None if previous is None else {"round": previous["round"], "n_labeled": previous["n_labeled"],
                                          "metrics": previous["metrics"] or None}


def finish(project, record, folder, chosen):
    """Enter the written round of ``record`` in the store; the round's answer (``record`` with ``selected``
    and ``folder``)."""
    project.store.finish_round(record["round"], n_labeled=record["n_labeled"],
                               metrics={"test": record["metrics"], "evaluation": record["evaluation"],
                                        "audit": record["audit"], "stop_kappa": record["stop_kappa"],
                                        "strategy": record["strategy"], "budget": record["budget"]})
    return dict(record, selected=int(len(chosen)), folder=str(folder))
