"""Selection time with and without a subpool on a large synthetic pool.

    python -m benchmarks.anchoral_speed --pool 1000000 --labeled 5000

Times, on the same clustered pool as benchmarks/scale.py: full-pool entropy, the
AnchorAL / SEALS / random subpools followed by entropy inside them, and the
analyzer's intersection (uncertainty & diversity & novelty) on the whole pool
against the same intersection on the AnchorAL subpool (labeled items kept, so
novelty still measures distance to the labeled set).
"""
import argparse
import json
import sys
import time
from pathlib import Path


import numpy as np

from labelnext import heuristics as alf
from labelnext import knn
from labelnext.strategies.anchoral import anchoral_subpool, random_subpool, seals_subpool
from benchmarks.synthetic import make_pool


def intersection(probs, emb, mask, budget, seed):
    """The analyzer's selection (uncertainty & diversity & novelty, ranked to ``budget``): pool rows."""
    res = alf.analyze(probs, emb, mask, budget=budget, random_state=seed)
    return np.flatnonzero(~mask)[res["intersection"]["rows"]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pool", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=576)
    p.add_argument("--labeled", type=int, default=5000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--num-anchors", type=int, default=10)
    p.add_argument("--k-neighbors", type=int, default=50)
    p.add_argument("--subpool-size", type=int, default=1000)
    p.add_argument("--skip-full-intersection", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)

    emb, probs, labels, mask = make_pool(args.pool, args.dim, args.classes, args.labeled, random_state=args.seed)
    known = np.where(mask, labels, -1)
    view = knn.StandardizedView(emb)
    out = {"pool": args.pool, "labeled": int(mask.sum()), "dim": args.dim}

    def timed(name, fn):
        t = time.perf_counter()
        res = fn()
        out[name] = round(time.perf_counter() - t, 3)
        print(f"{name:>40}: {out[name]:8.2f} s", flush=True)
        return res

    def entropy_on(rows):
        return rows[alf.select_top(alf.entropy_scores(probs[rows]), args.budget, random_state=args.seed)]

    pool = np.flatnonzero(~mask)
    timed("entropy, full pool", lambda: entropy_on(pool))
    sub = timed("anchoral subpool", lambda: anchoral_subpool(view, mask, known, num_anchors=args.num_anchors,
                                                             k_neighbors=args.k_neighbors,
                                                             subpool_size=args.subpool_size, random_state=args.seed))
    timed("anchoral subpool + entropy", lambda: entropy_on(anchoral_subpool(
        view, mask, known, num_anchors=args.num_anchors, k_neighbors=args.k_neighbors,
        subpool_size=args.subpool_size, random_state=args.seed)))
    timed("random subpool + entropy", lambda: entropy_on(random_subpool(mask, args.subpool_size, random_state=args.seed)))
    seals = timed("seals subpool (k=10 per labeled item)", lambda: seals_subpool(view, mask, k_neighbors=10, random_state=args.seed))
    out["seals_subpool_size"] = int(len(seals))
    out["knn_method_anchoral"] = knn.knn_method_for(args.num_anchors * args.classes, len(pool), args.dim)
    out["knn_method_seals"] = knn.knn_method_for(int(mask.sum()), len(pool), args.dim)
    if not args.skip_full_intersection:
        timed("intersection, full pool", lambda: intersection(probs, emb, mask, args.budget, args.seed))

    def sub_intersection():
        rows = np.sort(np.concatenate([np.flatnonzero(mask), sub]))
        return intersection(probs[rows], np.asarray(emb[rows]), mask[rows], args.budget, args.seed)

    timed("intersection on the anchoral subpool", sub_intersection)
    print(f"AnchorAL subpool: {len(sub)} items; SEALS subpool: {len(seals)} items; kNN: anchoral "
          f"{out['knn_method_anchoral']}, seals {out['knn_method_seals']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
