"""How a real user's loop knows how good the model is, and when labeling stops paying.

The audit: each round spends a share of its budget on items drawn uniformly at random from
the pool (:func:`audit_size`, :func:`draw_audit`), mixed into the selection without a mark
(:func:`mix`) and kept out of training. Every audit item labeled so far is the evaluation
set; accuracy on it carries a Wilson interval (:func:`accuracy_interval`). A uniform draw
is what makes it an unbiased estimate of accuracy on the pool; the strategy's picks are not
(they are the hard items by design).

The stopping signal (:func:`stopping_signal`): stabilizing predictions on a fixed random stop
set (Bloodgood & Vijay-Shanker 2009, "A method for stopping active learning based on
stabilizing predictions and the need for user-adjustable stopping", CoNLL) and the gain of
the accuracy curve per 100 labels.

References
----------
Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
JASA 22(158), 209-212.
"""
import math

import numpy as np
from sklearn.metrics import cohen_kappa_score
from sklearn.utils import check_random_state

from labelnext.training.predict import metrics_from_probs
from labelnext.utils.checks import check_float, check_int

# Share of each round's budget drawn at random for the audit, and its floor: about 10 items
# a round give a usable interval after three rounds (30 items: +-0.15 at 0.75 accuracy).
AUDIT_SHARE = 0.1
AUDIT_FLOOR = 10
# Stabilizing predictions' defaults (the paper's): kappa >= 0.99 between consecutive models on
# the stop set, for 3 rounds in a row. The stop set: a fixed random sample of the pool (the
# paper uses a few thousand unlabeled items); the benchmark reads the same constants.
SP_KAPPA, SP_WINDOW = 0.99, 3
STOP_SET_SIZE = 2000
# Gain per 100 labels below which the accuracy curve counts as flat.
FLAT_GAIN = 0.005
Z95 = 1.959963984540054


def audit_size(budget, share=AUDIT_SHARE, floor=AUDIT_FLOOR):
    """Items of a round's ``budget`` drawn for the audit: ``share`` of it, at least ``floor``,
    at most ``budget - 1`` (the strategy keeps one pick); 0 when ``share`` is 0."""
    budget = check_int(budget, "budget", low=1)
    share = check_float(share, "audit", low=0.0, high=0.9)
    if share == 0 or budget < 2:
        return 0
    return int(min(budget - 1, max(floor, math.ceil(share * budget))))


def draw_audit(selectable, size, random_state):
    """``size`` rows drawn uniformly without replacement from the True rows of ``selectable``.

    Parameters
    ----------
    selectable : ndarray of shape (n_items,), bool
        Pool items that may be drawn (unlabeled, never drawn for an audit before).
    size : int
    random_state : int or RandomState

    Returns
    -------
    rows : ndarray of shape (min(size, n_selectable),), int64, ascending
    """
    pool = np.flatnonzero(selectable)
    size = min(int(size), pool.size)
    rng = check_random_state(random_state)
    return np.sort(rng.choice(pool, size, replace=False)).astype(np.int64)


def mix(chosen, audit, random_state):
    """The strategy's ranked ``chosen`` with the ``audit`` rows put at uniformly random ranks.

    Nothing in the result tells the two apart, so a person labels both alike.
    """
    chosen, audit = np.asarray(chosen, np.int64), np.asarray(audit, np.int64)
    total = chosen.size + audit.size
    rng = check_random_state(random_state)
    slots = np.zeros(total, bool)
    slots[rng.choice(total, audit.size, replace=False)] = True
    out = np.empty(total, np.int64)
    out[slots] = rng.permutation(audit)
    out[~slots] = chosen
    return out


def accuracy_interval(n_correct, n, z=Z95):
    """Wilson score interval of a proportion: ``[low, high]``, or None when ``n`` is 0."""
    if n == 0:
        return None
    p = n_correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def measure(probs, y):
    """Accuracy and macro-F1 of ``probs`` against ``y``, with the number of items and the
    accuracy's 95% interval: ``{accuracy, macro_f1, n_eval, accuracy_ci}``; None when ``y`` is empty.

    Parameters
    ----------
    probs : ndarray of shape (n, n_classes)
    y : ndarray of shape (n,), int
    """
    y = np.asarray(y, dtype=np.int64)
    if y.size == 0:
        return None
    metrics = metrics_from_probs(probs, y)
    n_correct = int((np.asarray(probs).argmax(axis=1) == y).sum())
    return dict(metrics, n_eval=int(y.size), accuracy_ci=accuracy_interval(n_correct, int(y.size)))


def stop_set(n_items, random_state, size=STOP_SET_SIZE):
    """The fixed rows on which consecutive models' predictions are compared."""
    if n_items <= size:
        return np.arange(n_items)
    return np.sort(check_random_state(random_state).choice(n_items, size, replace=False))


def agreement(previous, current):
    """Cohen's kappa between two rounds' predicted classes on the stop set (1.0 when identical:
    identical constant predictions make kappa 0/0, and they agree fully)."""
    previous, current = np.asarray(previous), np.asarray(current)
    if np.array_equal(previous, current):
        return 1.0
    return float(cohen_kappa_score(previous, current))


def stopping_signal(rounds):
    """Whether more labels still help, from what the rounds recorded.

    Parameters
    ----------
    rounds : list of dict
        Finished rounds, oldest first, each with ``round``, ``n_labeled``, ``accuracy`` (None
        when not measured) and ``stop_kappa`` (agreement with the previous round's predictions
        on the stop set; None for the first round).

    Returns
    -------
    dict or None
        ``message`` (one line), ``gain_per_100`` (accuracy change per 100 labels between the
        last two measured rounds, None before two), ``kappa`` (the last agreement),
        ``flat_since`` (the round from which predictions have been stable, None if not).
        None before two rounds.
    """
    if len(rounds) < 2:
        return None
    measured = [r for r in rounds if r.get("accuracy") is not None]
    gain = None
    if len(measured) >= 2 and measured[-1]["n_labeled"] > measured[-2]["n_labeled"]:
        a, b = measured[-2], measured[-1]
        gain = round(100 * (b["accuracy"] - a["accuracy"]) / (b["n_labeled"] - a["n_labeled"]), 4)
    kappas = [r.get("stop_kappa") for r in rounds]
    stable = 0
    for k in reversed(kappas):
        if k is None or k < SP_KAPPA:
            break
        stable += 1
    flat_since = rounds[len(rounds) - stable]["round"] if stable >= SP_WINDOW else None
    kappa = kappas[-1]
    said = [f"kappa {kappa:.3f} with the last round's predictions on the stop set"] if kappa is not None else []
    if gain is not None:
        said.insert(0, f"{gain:+.3f} accuracy per 100 labels")
    if flat_since is not None and (gain is None or gain < FLAT_GAIN):
        message = (f"gains have flattened since round {flat_since}: predictions stable for {stable} rounds "
                   f"(kappa >= {SP_KAPPA})" + (f", {said[0]}" if gain is not None else ""))
    elif gain is not None and gain >= FLAT_GAIN:
        message = f"labels are still helping ({'; '.join(said)})"
    else:
        message = f"no clear gain from the last round ({'; '.join(said) or 'no accuracy measured yet'})"
    return {"message": message, "gain_per_100": gain, "kappa": kappa, "flat_since": flat_since}
