"""Which learner on pretrained features, and how well ``auto`` picks it: random labels, every size.

    python -m benchmarks.learner_choice --dataset ../shared/data/cifar10-jpg.tar.gz --seeds 5

Each seed draws the label-efficiency benchmark's pool and test set (``--pool-size`` /
``--test-size``, ``seed_split``) and encodes them with the pretrained encoder (``--variant``; read
back from the data cache when the benchmark ran first; ``--no-mirror``: each image's features
alone, not averaged with its mirror image's). For every number of labels in ``--labels`` and each
of ``--draws`` random draws of that many pool items, every learner of ``--learners`` trains on the
drawn labels and is tested on the test set, and is cross-validated on them as ``auto`` does
(:class:`loop.learner.LearnerChoice`: stratified folds, 3 unless ``--folds`` names others, held-out
items predicted as unseen). The first table is each learner's mean test accuracy per number of
labels; the second what ``auto`` would have reached with each candidate set and rule (the pick's
test accuracy), beside the best learner of each draw in hindsight.
"""
import argparse
import itertools
import time

import numpy as np

from labelnext.benchmark.simulate import load_data, seed_split
from labelnext.features.pretrained import ENCODER, default_cache_dir, encode_cached
from labelnext.loop.learner import FOLDS, MIN_PER_CLASS, fold_correct, folds_for, pick
from labelnext.training.trainer import make_trainer


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", required=True, help="an image data set load_dataset reads (CIFAR-10's tar.gz)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--variant", default=ENCODER, help="the EfficientNet-Lite whose features the learners read")
    p.add_argument("--no-mirror", dest="mirror", action="store_false",
                   help="features of each image alone, not averaged with its mirror image's")
    p.add_argument("--image-size", type=int, default=32, help="side the images are loaded at (the encoder resizes)")
    p.add_argument("--pool-size", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--labels", default="10,20,50,100,200,500,1000")
    p.add_argument("--draws", type=int, default=1, help="random draws of labels per size and seed")
    p.add_argument("--learners", default="spread,blend,logreg")
    p.add_argument("--folds", default=str(FOLDS), help="cross-validation folds, or several (3,5) to compare")
    return p.parse_args(argv)


def folds_correct(learner, x, y, seed, folds):
    """Per labeled item, whether the folds' learner got it right, as ``auto`` measures it (None when a class
    has too few labels to cross-validate)."""
    folds = folds_for(y, folds)
    return None if folds < MIN_PER_CLASS else fold_correct(learner, x, y, folds, seed)


def main(argv=None):
    args = parse(argv)
    x_all, y_all, xt_all, yt_all, n_classes, _ = load_data(args.dataset, args.image_size)
    sizes, names = [int(v) for v in args.labels.split(",")], args.learners.split(",")
    fold_counts = [int(v) for v in args.folds.split(",")]
    records, start = [], time.perf_counter()
    for seed in range(args.seeds):
        pool, test = seed_split(len(y_all), len(yt_all), seed, args.pool_size, args.test_size)
        xp, xt = (encode_cached(x, default_cache_dir(), variant=args.variant, mirror=args.mirror)
                  for x in (x_all[pool], xt_all[test]))
        yp, yt = y_all[pool], yt_all[test]
        learners = {a: make_trainer(xp.shape[1:], n_classes, arch=a).start(seed, adapt=xp) for a in names}
        for n, draw in itertools.product(sizes, range(args.draws)):
            rows = np.random.RandomState(1000 * draw + seed).choice(len(yp), n, replace=False)
            rec = {"n": n, "test": {}, "cv": {f: {} for f in fold_counts}}
            for a, learner in learners.items():
                for f in fold_counts:
                    rec["cv"][f][a] = folds_correct(learner, xp[rows], yp[rows], seed, f)
                rec["test"][a] = float((learner.fit(xp[rows], yp[rows], seed).predict(xt)[0].argmax(axis=1) == yt).mean())
            records.append(rec)
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)

    def row(label, accuracy):
        means = [np.mean([accuracy(r) for r in records if r["n"] == n]) for n in sizes]
        print(f"| {label} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.4f} |")

    head = "| {} | " + " | ".join(str(n) for n in sizes) + " | mean |\n|---|" + "---|" * (len(sizes) + 1)
    print(f"\n{args.variant}, {args.seeds} seeds x {args.draws} draws, test accuracy by labels\n")
    print(head.format("learner"))
    for a in names:
        row(f"`{a}`", lambda r, a=a: r["test"][a])
    row("best of each draw (hindsight)", lambda r: max(r["test"].values()))
    print("\n" + head.format("`auto`: candidates, rule"))

    def chosen(r, cands, by_steps, f):
        if r["cv"][f][cands[0]] is None:
            return r["test"][cands[0]]  # too few labels to cross-validate: the first candidate
        scores = {a: r["cv"][f][a].mean() for a in cands}
        return r["test"][pick(cands, scores, r["n"], by_steps)[0]]

    for k in range(2, len(names) + 1):
        for cands in itertools.combinations(names, k):  # in --learners' order, the first trained below 2 per class
            for by_steps, rule in ((False, "best of the folds"), (True, "one standard error")):
                for f in fold_counts:
                    folds = f"; {f} folds" if len(fold_counts) > 1 else ""
                    row(f"{', '.join(cands)}; {rule}{folds}", lambda r, c=cands, b=by_steps, f=f: chosen(r, c, b, f))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
