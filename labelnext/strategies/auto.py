"""``auto``: pick the selection method by the budget regime.

With few labels per class the model's uncertainty is not yet worth much, and the methods
that cover the data's dense regions win (typicality / coverage: TypiClust, Hacohen et al.
2022; ProbCover, Yehuda et al. 2022); once the model is decent, uncertainty with diversity
wins (DBAL, Zhdanov 2019; BADGE, Ash et al. 2020; Cluster-Margin, Citovsky et al. 2021).
Hacohen et al. call this the "phase transition" between the low- and the high-budget
regime. ``auto`` switches at a number of labels per class measured on the label-efficiency
benchmark (see :data:`SWITCH_LABELS_PER_CLASS`), and :func:`auto_choice` says which method it
picked and why.
"""
from dataclasses import dataclass

from labelnext.utils.checks import check_choice, check_float
from labelnext.strategies.badge import badge_strategy
from labelnext.strategies.base import Options
from labelnext.strategies.cluster_margin import cluster_margin_strategy
from labelnext.strategies.dbal import dbal_strategy
from labelnext.strategies.probcover import probcover_strategy
from labelnext.strategies.typiclust import typiclust_strategy

# The candidates of each regime (the strategy functions behind the registry's names).
LOW_BUDGET = {"typiclust": typiclust_strategy, "probcover": probcover_strategy}
HIGH_BUDGET = {"badge": badge_strategy, "cluster_margin": cluster_margin_strategy, "dbal": dbal_strategy}

# Measured on the label-efficiency benchmark (docs/BENCHMARKS.md, "Switch point of auto"):
# - from 1 label per class (`--dataset digits --strategies random,typiclust,dbal --initial 10
#   --budget 10 --rounds 15 --seeds 3`), TypiClust's first picks beat DBAL's (20 labels: 0.786 vs
#   0.748 mean accuracy): typicality is what to ask for while a class has a single example;
# - from 2 labels per class (`--strategies random,typiclust,dbal,badge,modal_ranked_batch
#   --initial 20 --budget 10 --rounds 10 --seeds 3`), DBAL is ahead of TypiClust at every round
#   and of BADGE and modAL's ranked batch at 9 of 10 (30 labels: 0.843 vs 0.831 / 0.807 / 0.824); on
#   letter-recognition from 2 per class DBAL and TypiClust are level (AULC 0.482 each, 3 seeds).
# Switching later costs: TypiClust until 4 per class, then DBAL, gave AULC 0.905 against DBAL's
# 0.916 on digits seed 0. DBAL replaced BADGE (the switch at 8 per class was measured against it).
SWITCH_LABELS_PER_CLASS = 2.0
# A linear model on label-free features (``--features patches``: the selection space is the model's
# input) stays in the low-budget regime far longer. CIFAR-10, 5,000-item pools, 5 seeds (docs/BENCHMARKS.md,
# "CIFAR-10 on label-free patch features"): from 1 to 10 labels per class TypiClust beats random's AULC by
# +0.020 in 5/5 seeds and DBAL loses (-0.010, 1/5); from 20 to 100 per class DBAL is the best (+0.006,
# 4/5; TypiClust +0.003, ahead only in its first round). Measured at 1-10 and 20-100 per class only:
# the switch lies between, 20 is where DBAL was measured to win.
PROBE_SWITCH_LABELS_PER_CLASS = 20.0
LOW_DEFAULT, HIGH_DEFAULT = "typiclust", "dbal"
# In the pretrained space (measured on EfficientNet-Lite0 features, ``logreg``; docs/BENCHMARKS.md, "CIFAR-10 on
# pretrained features"): from 1 to 10 labels per class ProbCover beat TypiClust in every seed and at
# every round (AULC over random +0.089 / +0.121 / +0.066 against +0.063 / +0.069 / +0.007, seeds 0-2),
# as Yehuda et al. 2022 report for self-supervised features; DBAL was behind both (+0.032 mean).
# Measured on pretrained features only: TypiClust stays the default elsewhere.
PRETRAINED_LOW = "probcover"


def switch_for(model, features="raw"):
    """The switch point for a base model: :data:`PROBE_SWITCH_LABELS_PER_CLASS` for a linear probe
    (``linear``, ``logreg``, ``spread``, ``blend`` on the same inputs, or the learner chosen by ``auto`` on features), else
    :data:`SWITCH_LABELS_PER_CLASS`."""
    probe = model in ("linear", "logreg", "spread", "blend") or (model == "auto" and features != "raw")
    return PROBE_SWITCH_LABELS_PER_CLASS if probe else SWITCH_LABELS_PER_CLASS


def auto_params(model, features="raw"):
    """``params['auto']`` for a base model on ``features``: the switch point (:func:`switch_for`) and the
    low-budget method (:data:`PRETRAINED_LOW` on pretrained features)."""
    return {"switch_labels_per_class": switch_for(model, features),
            "low": PRETRAINED_LOW if features == "pretrained" else LOW_DEFAULT}


@dataclass(frozen=True)
class AutoOptions(Options):
    """Options of ``auto``.

    switch_labels_per_class : float, default=:data:`SWITCH_LABELS_PER_CLASS`
        Labeled items per class (labeled rows / classes, before this round) from which the
        uncertainty-with-diversity method is used.
    low : {'typiclust', 'probcover'}
        The method below the switch point.
    high : {'dbal', 'badge', 'cluster_margin'}
        The method from the switch point on.
    """

    switch_labels_per_class: float = SWITCH_LABELS_PER_CLASS
    low: str = LOW_DEFAULT
    high: str = HIGH_DEFAULT

    def __post_init__(self):
        check_float(self.switch_labels_per_class, "switch_labels_per_class", 0.0, None)
        check_choice(self.low, "low", tuple(LOW_BUDGET))
        check_choice(self.high, "high", tuple(HIGH_BUDGET))


def auto_choice(ctx, budget):
    """The method ``auto`` runs on ``ctx`` and the reason, in words.

    Parameters
    ----------
    ctx : SelectionContext
        Its ``params['auto']`` (:class:`AutoOptions`) sets the switch point and the two methods.
    budget : int
        Labels asked for this round (named in the reason).

    Returns
    -------
    name : str
        A registered strategy name, e.g. ``'typiclust'``.
    reason : str
        One sentence, e.g. ``'4.0 labels per class (40 labeled / 10 classes) < 5: typiclust
        (typicality, the low-budget regime)'``.
    """
    opts = ctx.options("auto", AutoOptions)
    n_labeled = int(ctx.labeled_mask.sum())
    per_class = n_labeled / ctx.n_classes
    where = f"{per_class:.1f} labels per class ({n_labeled} labeled / {ctx.n_classes} classes)"
    if per_class < opts.switch_labels_per_class:
        return opts.low, (f"{where} < {opts.switch_labels_per_class:g}: {opts.low} for the next {budget} "
                          f"(typicality / coverage, the low-budget regime)")
    return opts.high, (f"{where} >= {opts.switch_labels_per_class:g}: {opts.high} for the next {budget} "
                       f"(uncertainty with diversity, the high-budget regime)")


def auto_strategy(ctx, budget, random_state=None):
    """Run the method :func:`auto_choice` picks; options: :class:`AutoOptions` (``params['auto']``),
    and the picked method reads its own section (e.g. ``params['typiclust']``).

    References
    ----------
    Hacohen, G., Dekel, A. and Weinshall, D. (2022). Active Learning on a Budget: Opposite
    Strategies Suit High and Low Budgets. ICML.
    """
    name, _ = auto_choice(ctx, budget)
    return {**LOW_BUDGET, **HIGH_BUDGET}[name](ctx, budget, random_state)
