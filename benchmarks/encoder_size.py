"""Input size of the pretrained encoder: images/s against the accuracy of a linear model on its features.

    python -m benchmarks.encoder_size --data ../shared/data/cifar10-jpg.tar.gz

A class-balanced subset (``--train`` / ``--test`` images, fixed seed) is encoded at each size;
a logistic regression (C=0.1) on the features, standardised over the whole training subset
(no labels), is trained on 10 / 100 / 1,000 random labeled items (3 draws, the same items at
every size) and scored on the test subset. One markdown row per encoder and size.
``--no-mirror``: the features of each image alone, not averaged with its mirror image's.
``--speed-only N``: images/s alone on N images, the configurations interleaved over 3 rounds (best
round), so a load that changes during the run weighs on all of them alike.
"""
import argparse
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from labelnext.data import load_dataset
from labelnext.features.pretrained import BATCH, pretrained_features


def balanced(y, n, rng):
    """``n`` rows of ``y``, the same number per class, in random order."""
    classes = np.unique(y)
    per = n // len(classes)
    return rng.permutation(np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in classes]))


def accuracy(f_train, y_train, f_test, y_test, labels, draws):
    scaler = StandardScaler().fit(f_train)
    a, b = scaler.transform(f_train), scaler.transform(f_test)
    scores = []
    for d in range(draws):
        rows = np.random.default_rng(d).choice(len(y_train), labels, replace=False)
        if len(np.unique(y_train[rows])) < 2:
            scores.append(float(np.mean(y_test == y_train[rows][0])))
            continue
        clf = LogisticRegression(C=0.1, max_iter=2000).fit(a[rows], y_train[rows])
        scores.append(float(np.mean(clf.predict(b) == y_test)))
    return float(np.mean(scores))


def speed(images, configs, mirror, batch_size, rounds=3):
    for variant in {v for v, _ in configs}:
        pretrained_features(images[:2], size=64, variant=variant)  # loads the network outside the timing
    best = {}
    for _ in range(rounds):
        for variant, size in configs:
            t = time.perf_counter()
            pretrained_features(images, size=size, variant=variant, mirror=mirror, batch_size=batch_size)
            best[variant, size] = max(best.get((variant, size), 0), len(images) / (time.perf_counter() - t))
        print(f"load after a round: {os.getloadavg()[0]:.2f}", flush=True)
    for (variant, size), rate in best.items():
        print(f"| {variant} | {size} | {rate:.0f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.path.join("..", "shared", "data", "cifar10-jpg.tar.gz"))
    p.add_argument("--train", type=int, default=1000)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--encoders", default="efficientnet-lite2:128,160,192",
                   help="VARIANT:SIZE,SIZE[;VARIANT:SIZE...]")
    p.add_argument("--labels", default="10,100,1000")
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--speed-only", type=int, default=0, metavar="N")
    p.add_argument("--batch-size", type=int, default=BATCH, help="images per forward pass")
    p.add_argument("--no-mirror", dest="mirror", action="store_false",
                   help="features of each image alone, not averaged with its mirror image's")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    ds = load_dataset(args.data, image_size=32)
    rng = np.random.default_rng(0)
    tr, te = balanced(ds.y_train, args.train, rng), balanced(ds.y_test, args.test, rng)
    x_train, y_train, x_test, y_test = ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te]
    labels = [int(v) for v in args.labels.split(",")]
    configs = [(v, int(s)) for v, sizes in (spec.split(":") for spec in args.encoders.split(";")) for s in sizes.split(",")]
    if args.speed_only:
        return speed(x_train[:args.speed_only], configs, args.mirror, args.batch_size)
    print(f"load at start: {os.getloadavg()[0]:.2f}; {len(y_train)} train / {len(y_test)} test images")
    print("| encoder | size | images/s | " + " | ".join(f"{n:,} labels" for n in labels) + " |")
    print("|---|---|---|" + "---|" * len(labels))
    for spec in args.encoders.split(";"):
        variant, sizes = spec.split(":")
        pretrained_features(x_train[:2], size=64, variant=variant)  # loads the network outside the timing
        for size in (int(s) for s in sizes.split(",")):
            t = time.perf_counter()
            opts = dict(size=size, variant=variant, mirror=args.mirror, batch_size=args.batch_size)
            f_train, f_test = pretrained_features(x_train, **opts), pretrained_features(x_test, **opts)
            rate = (len(x_train) + len(x_test)) / (time.perf_counter() - t)
            accs = [accuracy(f_train, y_train, f_test, y_test, n, args.draws) for n in labels]
            print(f"| {variant} | {size} | {rate:.0f} | " + " | ".join(f"{a:.3f}" for a in accs) + " |", flush=True)
    print(f"load at end: {os.getloadavg()[0]:.2f}; {time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
