"""The semi-supervised learner's settings: ``spread`` (label spreading) against ``logreg`` on random labels.

    python -m benchmarks.semi_supervised --dataset ../shared/data/cifar10-jpg.tar.gz --seeds 3

Each seed draws the label-efficiency benchmark's pool and test set (``--pool-size`` / ``--test-size``,
``seed_split``) and its initial labels (``initial_rows``, one per class at 10 labels), encodes them
with the pretrained encoder (``--features pretrained``; read back from the data cache when the
benchmark ran first), then adds ``--budget`` random labels per round. At every round ``logreg`` and
``spread`` at each ``--alphas`` x ``--neighbours`` setting train on the same labels; the table gives
the mean test accuracy at the first and last round and the mean over rounds (the area under the
curve divided by its width), over seeds.

``--cost``: instead, the seconds of ``spread``'s start (the pool's graph and the model) on seed 0's
pool, of a fit on 10 / 100 / 1,000 of its items and of predicting the pool, and the size of the
saved model.
"""
import argparse
import os
import tempfile
import time

import numpy as np

from labelnext.benchmark.simulate import initial_rows, load_data, seed_split
from labelnext.features.pretrained import default_cache_dir, encode_cached
from labelnext.training.trainer import make_trainer


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", required=True, help="an image data set load_dataset reads (CIFAR-10's tar.gz)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--image-size", type=int, default=32, help="side the images are loaded at (the encoder resizes)")
    p.add_argument("--pool-size", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--initial", type=int, default=10)
    p.add_argument("--budget", type=int, default=10)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--alphas", default="0.2,0.5,0.9,0.99")
    p.add_argument("--neighbours", default="10,20")
    p.add_argument("--cost", action="store_true", help="time spread's start, fits and prediction instead")
    return p.parse_args(argv)


def cost(x, y, n_classes):
    """Seconds of a start, fits and a prediction of ``spread`` on ``x``, and the saved model's megabytes."""
    start = time.perf_counter()
    trainer = make_trainer(x.shape[1:], n_classes, arch="spread").start(0, adapt=x)
    print(f"start on {len(x):,} x {x.shape[1]:,}: {time.perf_counter() - start:.1f} s")
    for n in (10, 100, 1000):
        start = time.perf_counter()
        trainer.fit(x[:n], y[:n])
        print(f"fit on {n:,} labels: {time.perf_counter() - start:.2f} s ({trainer.info_['steps']} iterations)")
    start = time.perf_counter()
    trainer.predict(x)
    print(f"predict {len(x):,}: {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        trainer.save_run(os.path.join(tmp, "run"), [0], {})
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tmp) for f in files)
    print(f"saved model: {size / 1e6:.1f} MB")


def main(argv=None):
    args = parse(argv)
    x_all, y_all, xt_all, yt_all, n_classes, _ = load_data(args.dataset, args.image_size)
    settings = [(a, k) for k in map(int, args.neighbours.split(",")) for a in map(float, args.alphas.split(","))]
    names = ["logreg"] + [f"spread alpha={a:g} k={k}" for a, k in settings]
    acc = {n: np.zeros((args.seeds, args.rounds + 1)) for n in names}
    start = time.perf_counter()
    for seed in range(args.seeds):
        pool, test = seed_split(len(y_all), len(yt_all), seed, args.pool_size, args.test_size)
        xp, xt = (encode_cached(x, default_cache_dir()) for x in (x_all[pool], xt_all[test]))
        yp, yt = y_all[pool], yt_all[test]
        if args.cost:
            return cost(xp, yp, n_classes)
        learners = {"logreg": make_trainer(xp.shape[1:], n_classes, arch="logreg").start(seed, adapt=xp)}
        for k in sorted({k for _, k in settings}):
            learners[k] = make_trainer(xp.shape[1:], n_classes, arch="spread", k=k).start(seed, adapt=xp)
        labeled = np.zeros(len(yp), bool)
        labeled[initial_rows(yp, args.initial, seed)] = True
        rng = np.random.RandomState(seed)
        for r in range(args.rounds + 1):
            rows = np.flatnonzero(labeled)
            for name, (alpha, k) in zip(names, [(None, "logreg")] + settings):
                learner = learners[k]
                if alpha is not None:
                    learner.alpha = alpha
                probs = learner.fit(xp[rows], yp[rows], seed).predict(xt)[0]
                acc[name][seed, r] = (probs.argmax(axis=1) == yt).mean()
            labeled[rng.choice(np.flatnonzero(~labeled), args.budget, replace=False)] = True
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
    first, last = args.initial, args.initial + args.rounds * args.budget
    print(f"\n| learner | at {first} labels | at {last} labels | mean over rounds | seeds above logreg (mean) |")
    print("|---|---|---|---|---|")
    for name in names:
        a = acc[name]
        wins = int((a.mean(axis=1) > acc["logreg"].mean(axis=1)).sum())
        print(f"| {name} | {a[:, 0].mean():.3f} | {a[:, -1].mean():.3f} | {a.mean():.4f} | "
              f"{'—' if name == 'logreg' else f'{wins}/{args.seeds}'} |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
