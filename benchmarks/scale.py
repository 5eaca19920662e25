"""Selection at scale: time and peak memory of every stage on synthetic clustered pools.

    python -m benchmarks.scale --pool 1000000 --dim 576 --labeled 5000 --classes 10 --json results/scale.json
    python -m benchmarks.scale --pool 1000000 --sizes 1000000 --skip-baseline --recall-size 0 --compare faiss
    python -m benchmarks.scale --pool 10000000 --engine disk --shard-rows 1000000
    python -m benchmarks.scale --pool 1000000 --engine dask --workers 2 [--ranks sketch] [--scheduler tcp://HOST:8786]

``--engine local`` (the default) is the analyzer in memory, described below. ``disk`` and
``dask`` run one child per size (default: ``--pool`` only) from :mod:`benchmarks.scale_engines`:
seconds per stage, passes of ``X @ W``, peak memory per worker and, for ``dask``, the Jaccard
overlap with ``analyze`` on the same shards. ``--json`` writes ``engine`` and ``workers`` at the
top and, per size, ``seconds`` (per stage), ``jaccard_vs_local`` and ``peak_memory_mb_per_worker``.

For each size (``--sizes``, default 10k, 100k and ``--pool``) a fresh process builds
the pool and runs ``ActiveLearningAnalyzer.from_arrays(...).run_all(...)`` and
``find_intersection(budget)`` with ``write=False`` (selection only, no figures), one
stage at a time. Per stage it reports seconds and the process's peak resident
memory (VmHWM, reset before the stage through ``/proc/self/clear_refs``; it includes
the input arrays the process holds, 2.3 GB at 1M x 576) and the sampled peak of
anonymous memory (RssAnon every 20 ms: excludes memory-mapped file pages).

Also, in the same run:

* the straightforward implementation (scikit-learn KMeans with n_init=10 and
  brute-force pairwise distances) at the sizes up to ``--baseline-max``, with the
  time ratio and the overlap of the two selections;
* modAL's ranked batch-mode query (``uncertainty_batch_sampling``) of the same budget
  on the same pool at ``--modal-sizes`` (extrapolated elsewhere, and labelled so);
* the recall of the approximate (HNSW) novelty neighbours against exact ones
  at ``--recall-size``;
* with ``--mmap``: the embeddings written to a temporary ``.npy``, loaded with
  ``np.load(..., mmap_mode='r')`` and analysed again; the selections must be identical.

At sizes below ``--pool`` the labeled set is ``min(--labeled, 5% of the size)``.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances

from labelnext import heuristics as alf
from labelnext import knn
from labelnext.analysis.main import ActiveLearningAnalyzer
from benchmarks.memprobe import PeakMemory, stage_recorder
from benchmarks.scale_engines import CHILDREN as ENGINE_CHILDREN
from benchmarks.synthetic import make_pool

STAGES = ("prepare", "uncertainty", "diversity", "novelty", "intersection")


# --------------------------------------------------------------------------- children
def _pool(args):
    return make_pool(args.n, args.dim, args.classes, args.labeled, n_centers=args.centers, random_state=args.seed)


def child_pipeline(args):
    """Our analyzer, stage by stage; saves the selections for the comparisons."""
    emb, probs, labels, mask = _pool(args)
    mmap_path = None
    if args.mmap:
        mmap_path = Path(args.workdir) / f"embeddings_{args.n}.npy"
        out = np.lib.format.open_memmap(mmap_path, mode="w+", dtype=np.float32, shape=emb.shape)
        for s in range(0, emb.shape[0], 65_536):
            out[s:s + 65_536] = emb[s:s + 65_536]
        out.flush()
        del out, emb
        emb = np.load(mmap_path, mmap_mode="r")
    mem = PeakMemory()
    rec = {"n": args.n, "dim": args.dim, "labeled": int(mask.sum()), "mmap": bool(args.mmap), "stages": {}}
    sel = {}
    t_all = time.perf_counter()
    stage = stage_recorder(rec, mem)

    an = stage("prepare", lambda: _prepare(probs, emb, mask, labels, args.seed))
    sel["uncertainty"] = stage("uncertainty", lambda: an.run_uncertainty(write=False))
    sel["diversity"] = stage("diversity", lambda: an.run_diversity(write=False))
    sel["novelty"] = stage("novelty", lambda: an.run_novelty(write=False))
    sel["intersection"] = stage("intersection", lambda: an.find_intersection(budget=args.budget, retrain=False, write=False)[0])
    rec["total_seconds"] = round(time.perf_counter() - t_all, 3)
    rec["peak_rss_mb"] = max(s["peak_rss_mb"] for s in rec["stages"].values())
    rec["peak_anon_mb"] = max(s["peak_anon_mb"] for s in rec["stages"].values())
    rec["process_max_rss_mb_incl_data_generation"] = round(_max_rss_kb() / 1024)
    rec["kmeans_variant"] = an.results_["diversity"]["params"]["algorithm"]
    # What knn_search(method="auto") ran for novelty (exact / faiss / hnsw).
    rec["knn"] = knn.knn_method_for(int((~mask).sum()), int(mask.sum()), emb.shape[1])
    rec["kept"] = {k: int(an.results_[k]["mask"].sum()) for k in ("uncertainty", "diversity", "novelty")}
    rec["kmeans_inertia"] = float(np.square(an.results_["diversity"]["scores"], dtype=np.float64).sum())
    rec["n_intersection"] = int(an.intersection_["info"]["n_intersection"])
    np.savez(Path(args.workdir) / f"selection_{args.n}_{'mmap' if args.mmap else 'memory'}.npz",
             **sel, **{f"{k}_mask": an.results_[k]["mask"] for k in ("uncertainty", "diversity", "novelty")})
    mem.close()
    if mmap_path is not None:
        del emb, an
        os.unlink(mmap_path)
    return rec


def _prepare(probs, emb, mask, labels, seed):
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, labels, results_dir=tempfile.gettempdir(), random_state=seed, verbose=False)
    an.standardized_  # statistics over all rows (lazy view: no copy)
    return an


def _max_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_baseline(args):
    """The straightforward implementation: full KMeans (n_init=10), brute-force pairwise distances."""
    emb, probs, labels, mask = _pool(args)
    mem = PeakMemory()
    rec = {"n": args.n, "stages": {}}
    t_all = time.perf_counter()
    stage = stage_recorder(rec, mem)

    x = stage("prepare", lambda: knn.standardize(emb))
    pool, lab = ~mask, mask
    unc = stage("uncertainty", lambda: alf.uncertainty_selection(probs[pool], 50, "combined"))

    def diversity():
        xp = x[pool]
        km = KMeans(n_clusters=20, n_init=10, random_state=args.seed).fit(xp)
        d = pairwise_distances(xp, km.cluster_centers_).min(axis=1)
        return alf.percentile_mask(d, 75), d

    def novelty():
        d = pairwise_distances(x[pool], x[lab])
        s = np.partition(d, 4, axis=1)[:, :5].mean(axis=1)
        return alf.percentile_mask(s, 75), s

    div = stage("diversity", diversity)
    rec["kmeans_inertia"] = float(np.square(div[1], dtype=np.float64).sum())
    nov = stage("novelty", novelty)
    rows = stage("intersection", lambda: alf.intersection_selection(
        {"uncertainty": unc[0], "diversity": div[0], "novelty": nov[0]},
        {"uncertainty": unc[1], "diversity": div[1], "novelty": nov[1]}, args.budget, random_state=args.seed)[0])
    rec["total_seconds"] = round(time.perf_counter() - t_all, 3)
    rec["peak_rss_mb"] = max(s["peak_rss_mb"] for s in rec["stages"].values())
    pool_idx = np.flatnonzero(pool)
    np.savez(Path(args.workdir) / f"baseline_{args.n}.npz", intersection=pool_idx[rows], diversity_mask=div[0], novelty_mask=nov[0])
    mem.close()
    return rec


class _PrecomputedClassifier:
    """What modAL's ranked batch query reads from a learner: X_training and predict_proba."""

    on_transformed = False

    def __init__(self, x_training, pool_probs):
        self.X_training = x_training
        self._probs = pool_probs

    def predict_proba(self, x, **kwargs):
        if x.shape[0] != self._probs.shape[0]:
            raise ValueError("predict_proba is only defined on the benchmark's pool")
        return self._probs


def child_modal(args):
    """modAL's ranked batch-mode query of ``budget`` items on the same standardised pool."""
    # Only this child needs modAL; importing it costs every other child seconds.
    from modAL.batch import uncertainty_batch_sampling

    emb, probs, labels, mask = _pool(args)
    x = knn.standardize(emb)
    mem = PeakMemory()
    mem.reset()
    clf = _PrecomputedClassifier(x[mask], probs[~mask])
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = uncertainty_batch_sampling(clf, x[~mask], n_instances=args.budget)
    seconds = time.perf_counter() - t
    rows = np.asarray(out[0] if isinstance(out, tuple) else out)
    np.save(Path(args.workdir) / f"modal_{args.n}.npy", np.flatnonzero(~mask)[rows])
    rec = dict(n=args.n, budget=args.budget, seconds=round(seconds, 3), **mem.read())
    mem.close()
    return rec


def child_recall(args):
    """HNSW novelty neighbours against exact ones on the same standardised pool."""
    emb, probs, labels, mask = _pool(args)
    view = knn.StandardizedView(emb)
    pool, lab = view[~mask], np.asarray(view[mask])
    k = 5
    t = time.perf_counter()
    d_a, i_a = knn.knn_search(pool, lab, k, method="hnsw", random_state=args.seed)
    t_a = time.perf_counter() - t
    t = time.perf_counter()
    d_e, i_e = knn.knn_search(pool, lab, k, method="exact")
    t_e = time.perf_counter() - t
    hits = (i_a[:, :, None] == i_e[:, None, :]).any(axis=2).sum()
    s_a, s_e = d_a.mean(axis=1), d_e.mean(axis=1)
    m_a, m_e = alf.percentile_mask(s_a, 75), alf.percentile_mask(s_e, 75)
    return {"n": args.n, "labeled": int(mask.sum()), "k": k, "ef": 64, "recall_at_k": round(float(hits / i_e.size), 5),
            "hnsw_seconds": round(t_a, 2), "exact_seconds": round(t_e, 2),
            "novelty_score_max_rel_error": float(np.max((s_a - s_e) / np.maximum(s_e, 1e-12))),
            "novelty_mask_jaccard": round(float((m_a & m_e).sum() / (m_a | m_e).sum()), 5)}


CHILDREN = {"pipeline": child_pipeline, "baseline": child_baseline, "modal": child_modal, "recall": child_recall,
            **ENGINE_CHILDREN}
ENGINES = ("local", "disk", "dask")


# --------------------------------------------------------------------------- parent
def run_child(kind, n, args, workdir, labeled, mmap=False):
    cmd = [sys.executable, "-m", "benchmarks.scale", "--child", kind, "--n", str(n), "--dim", str(args.dim), "--classes", str(args.classes),
           "--labeled", str(labeled), "--budget", str(args.budget), "--seed", str(args.seed), "--workdir", str(workdir),
           "--centers", str(args.centers)]
    if mmap:
        cmd.append("--mmap")
    if kind in ENGINE_CHILDREN:
        cmd += ["--shard-rows", str(args.shard_rows), "--workers", str(args.workers), "--ranks", args.ranks,
                "--kmeans", args.kmeans, "--knn", args.knn, "--compare", args.compare]
        cmd += ["--scheduler", args.scheduler] if args.scheduler else []
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    load_before = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} at n={n} failed:\n{proc.stderr[-3000:]}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    # The 1-minute load average around the run: > cpus means other processes competed for the cores.
    rec["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return rec


def _overlap(a, b):
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return len(a & b) / max(1, len(b))


def _jaccard(a, b):
    return float((a & b).sum() / max(1, (a | b).sum()))


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pool", type=int, default=1_000_000, help="largest pool size (items, labeled included)")
    p.add_argument("--dim", type=int, default=576)
    p.add_argument("--labeled", type=int, default=5000, help="labeled items (smaller sizes: min(this, 5%% of the size))")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--sizes", default=None, help="comma-separated pool sizes for the table (default: 10000,100000,POOL)")
    p.add_argument("--centers", type=int, default=50, help="Gaussian clusters in the synthetic pool (the analyzer's KMeans uses 20)")
    p.add_argument("--budget", type=int, default=1000, help="items selected by find_intersection (and by modAL)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--mmap", action="store_true", help="also run from a memory-mapped .npy and check the selections are identical")
    p.add_argument("--skip-baseline", action="store_true", help="skip the straightforward implementation and modAL")
    p.add_argument("--baseline-max", type=int, default=100_000, help="largest size for the straightforward implementation")
    p.add_argument("--modal-sizes", default="10000", help="sizes at which modAL's ranked batch query is timed")
    p.add_argument("--recall-size", type=int, default=100_000, help="size for HNSW-vs-exact recall (0: skip)")
    p.add_argument("--workdir", default=None, help="temporary folder (selections, the .npy for --mmap)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: the analyzer in memory (the table above); disk: analyze() on .npy shards read lazily; "
                        "dask: engine.analyze_sharded on a Dask cluster")
    p.add_argument("--workers", type=int, default=2, help="dask: worker processes of the local cluster (1 thread each)")
    p.add_argument("--scheduler", default=None, help="dask: address of an existing scheduler (tcp://HOST:8786) instead "
                                                     "of a local cluster; its workers must see --workdir")
    p.add_argument("--ranks", choices=("exact", "sketch"), default="exact", help="dask: exact ranks or sketch + top-k merge")
    p.add_argument("--kmeans", choices=("client", "workers"), default="client",
                   help="dask: KMeans fitted on the client (analyze()'s centres) or reduced across the workers")
    p.add_argument("--knn", default="auto", help="--compare faiss: novelty's method for analyze() (auto, ivf, faiss, ...)")
    p.add_argument("--shard-rows", type=int, default=250_000, help="disk, dask: rows per .npy shard")
    p.add_argument("--compare", choices=("none", "faiss", "local"), default=None,
                   help="local: 'faiss' also times analyze() in passes of X @ W against the exact flat search; "
                        "dask: 'local' (default) runs analyze() on the same shards for jaccard_vs_local")
    p.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.compare is None:
        args.compare = "local" if args.engine == "dask" else "none"
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return 0

    default_sizes = [10_000, 100_000, args.pool] if args.engine == "local" else [args.pool]
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else default_sizes
    modal_sizes = {int(s) for s in args.modal_sizes.split(",") if s} if not args.skip_baseline else set()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="scale-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = {"command": " ".join([Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:])),
               "cpus": os.cpu_count(), "engine": args.engine, "workers": args.workers if args.engine == "dask" else 1,
               "sizes": []}

    def labeled_for(n):
        return args.labeled if n >= args.pool else min(args.labeled, max(20, n // 20))

    if args.engine != "local":
        return _run_engine(args, sizes, labeled_for, workdir, results)
    for n in sizes:
        row = {"n": n, "labeled": labeled_for(n), "engine": "local", "workers": 1, "jaccard_vs_local": 1.0}
        _log(f"[{n}] our pipeline ...")
        row["ours"] = run_child("pipeline", n, args, workdir, labeled_for(n))
        row["seconds"] = {k: v["seconds"] for k, v in row["ours"]["stages"].items()}
        row["peak_memory_mb_per_worker"] = [{"peak_rss": row["ours"]["peak_rss_mb"], "peak_anon": row["ours"]["peak_anon_mb"]}]
        if args.compare == "faiss":
            _log(f"[{n}] analyze() in passes of X @ W, against the exact flat search ...")
            row["analyze"] = run_child("analyze", n, args, workdir, labeled_for(n))
        ours = np.load(workdir / f"selection_{n}_memory.npz")
        if args.mmap:
            _log(f"[{n}] our pipeline from a memory-mapped .npy ...")
            row["ours_mmap"] = run_child("pipeline", n, args, workdir, labeled_for(n), mmap=True)
            mm = np.load(workdir / f"selection_{n}_mmap.npz")
            row["mmap_identical"] = {k: bool(np.array_equal(ours[k], mm[k])) for k in ours.files}
        if not args.skip_baseline and n <= args.baseline_max:
            _log(f"[{n}] straightforward baseline (KMeans n_init=10, pairwise distances) ...")
            b = run_child("baseline", n, args, workdir, labeled_for(n))
            base = np.load(workdir / f"baseline_{n}.npz")
            b["time_ratio"] = round(b["total_seconds"] / row["ours"]["total_seconds"], 2)
            b["selection_overlap"] = round(_overlap(ours["intersection"], base["intersection"]), 4)
            b["diversity_mask_jaccard"] = round(_jaccard(ours["diversity_mask"], base["diversity_mask"]), 4)
            b["novelty_mask_jaccard"] = round(_jaccard(ours["novelty_mask"], base["novelty_mask"]), 4)
            # > 1: our KMeans fit (n_init=3, or MiniBatchKMeans on a sample) is that much worse in inertia.
            b["kmeans_inertia_ratio_ours_over_baseline"] = round(row["ours"]["kmeans_inertia"] / b["kmeans_inertia"], 4)
            row["baseline"] = b
        elif not args.skip_baseline:
            n_pool, n_lab = n - labeled_for(n), labeled_for(n)
            row["baseline"] = {"skipped": f"does not fit: the pool-by-labeled distance matrix alone is {n_pool * n_lab * 4 / 2**30:.1f} GiB "
                               f"(float32) and KMeans n_init=10 was measured at 437 s on 1M"}
        if n in modal_sizes:
            _log(f"[{n}] modAL ranked batch-mode query of {args.budget} ...")
            m = run_child("modal", n, args, workdir, labeled_for(n))
            m["time_ratio"] = round(m["seconds"] / row["ours"]["total_seconds"], 1)
            m["selection_overlap"] = round(_overlap(ours["intersection"], np.load(workdir / f"modal_{n}.npy")), 4)
            row["modal"] = m
        if n == args.recall_size:
            _log(f"[{n}] HNSW vs exact novelty neighbours ...")
            row["ann_recall"] = run_child("recall", n, args, workdir, labeled_for(n))
        results["sizes"].append(row)
        _print_row(row)
    _extrapolate_modal(results)
    _print_table(results)
    _write_json(args, results)
    return 0


def _write_json(args, results):
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
        _log(f"wrote {args.json}")


def _run_engine(args, sizes, labeled_for, workdir, results):
    """--engine disk|dask: one child per size (``benchmarks.scale_engines``), one line per size."""
    print(f"\n{'items':>10} {'engine':>6} {'workers':>7} {'total s':>8} {'passes':>7} {'seconds per stage':<60} "
          f"{'peak MB per worker':<28} {'Jaccard vs local':>16} {'load':>10}")
    for n in sizes:
        _log(f"[{n}] engine {args.engine} ...")
        rec = run_child(args.engine, n, args, workdir, labeled_for(n))
        row = {"n": n, "labeled": labeled_for(n), "engine": args.engine, "workers": rec["workers"],
               "seconds": rec["seconds"], "jaccard_vs_local": rec.get("jaccard_vs_local"),
               "peak_memory_mb_per_worker": rec.get("peak_memory_mb_per_worker") or
               [{"peak_rss": rec["peak_rss_mb"], "peak_anon": rec["peak_anon_mb"]}], "record": rec}
        results["sizes"].append(row)
        stages = " ".join(f"{k}={v:.1f}" for k, v in rec["seconds"].items())
        mem = ",".join(str(m.get("peak_rss")) for m in row["peak_memory_mb_per_worker"])
        print(f"{n:>10} {args.engine:>6} {row['workers']:>7} {rec['total_seconds']:>8.1f} {rec['passes']:>7.1f} "
              f"{stages:<60} {mem:<28} {str(row['jaccard_vs_local']):>16} {str(rec['load_avg_1min']):>10}")
    _write_json(args, results)
    return 0


def _extrapolate_modal(results):
    """modAL's cost per query grows with pool x labeled: scale its measured time (labelled as an estimate)."""
    measured = [r for r in results["sizes"] if "modal" in r]
    if not measured:
        return
    m = measured[0]
    base_pool = m["n"] - m["labeled"]
    for r in results["sizes"]:
        if "modal" not in r:
            pool = r["n"] - r["labeled"]
            # Each of the budget iterations scans the pool against the labeled set (+ the picks so far).
            factor = (pool / base_pool) * ((r["labeled"] + m["modal"]["budget"] / 2) / (m["labeled"] + m["modal"]["budget"] / 2))
            est = m["modal"]["seconds"] * factor
            r["modal_estimate"] = {"seconds_estimated": round(est), "time_ratio_estimated": round(est / r["ours"]["total_seconds"], 1),
                                   "note": f"extrapolated from n={m['n']}, not measured"}


def _print_row(row):
    o = row["ours"]
    _log(f"  n={row['n']}: total {o['total_seconds']:.1f} s, peak RSS {o['peak_rss_mb']} MB "
         + " ".join(f"{k}={v['seconds']:.2f}s/{v['peak_rss_mb']}MB" for k, v in o["stages"].items()))


def _print_table(results):
    print("\nOur pipeline (ActiveLearningAnalyzer.from_arrays -> run_all -> find_intersection, write=False)")
    print("seconds / peak RSS MB per stage (peak RSS includes the input arrays held by the process)")
    head = f"{'items':>9} {'labeled':>7} " + " ".join(f"{s:>18}" for s in STAGES) + f" {'total s':>8} {'peak MB':>8}"
    print(head)
    for r in results["sizes"]:
        o = r["ours"]
        cells = " ".join(f"{o['stages'][s]['seconds']:>9.2f} / {o['stages'][s]['peak_rss_mb']:>6}" for s in STAGES)
        print(f"{r['n']:>9} {r['labeled']:>7} {cells} {o['total_seconds']:>8.2f} {o['peak_rss_mb']:>8}")
    print("\nAgainst the straightforward implementation (KMeans n_init=10, brute-force pairwise distances) and modAL")
    print(f"{'items':>9} {'straightforward s':>18} {'ratio':>6} {'overlap':>8} {'div J':>6} {'nov J':>6} {'peak MB':>8} "
          f"{'modAL s':>9} {'ratio':>7} {'overlap':>8}")
    for r in results["sizes"]:
        b = r.get("baseline", {})
        if "total_seconds" in b:
            bs = f"{b['total_seconds']:>18.1f} {b['time_ratio']:>6.1f} {b['selection_overlap']:>8.3f} {b['diversity_mask_jaccard']:>6.3f} {b['novelty_mask_jaccard']:>6.3f} {b['peak_rss_mb']:>8}"
        else:
            bs = f"{'does not fit' if b else 'skipped':>18} {'':>6} {'':>8} {'':>6} {'':>6} {'':>8}"
        if "modal" in r:
            ms = f"{r['modal']['seconds']:>9.1f} {r['modal']['time_ratio']:>7.1f} {r['modal']['selection_overlap']:>8.3f}"
        elif "modal_estimate" in r:
            ms = f"{'~' + str(r['modal_estimate']['seconds_estimated']):>9} {'~' + str(r['modal_estimate']['time_ratio_estimated']):>7} {'(est.)':>8}"
        else:
            ms = f"{'':>9} {'':>7} {'':>8}"
        print(f"{r['n']:>9} {bs} {ms}")
    for r in results["sizes"]:
        if "ann_recall" in r:
            a = r["ann_recall"]
            print(f"\nHNSW (ef={a['ef']}) vs exact novelty neighbours at {a['n']} items / {a['labeled']} labeled: recall@{a['k']} "
                  f"{a['recall_at_k']:.4f}, novelty-mask Jaccard {a['novelty_mask_jaccard']:.4f}, "
                  f"{a['hnsw_seconds']:.1f} s vs {a['exact_seconds']:.1f} s exact")
        if "kmeans_inertia_ratio_ours_over_baseline" in r.get("baseline", {}):
            print(f"KMeans inertia at {r['n']}: ours / KMeans(n_init=10) = {r['baseline']['kmeans_inertia_ratio_ours_over_baseline']:.4f} "
                  f"({r['ours']['kmeans_variant']})")
        if "mmap_identical" in r:
            same = all(r["mmap_identical"].values())
            o = r["ours_mmap"]
            print(f"memory-mapped .npy at {r['n']}: selections identical: {same} {'' if same else r['mmap_identical']}; "
                  f"{o['total_seconds']:.1f} s, peak RSS {o['peak_rss_mb']} MB (incl. mapped file pages), peak anonymous {o['peak_anon_mb']} MB")


if __name__ == "__main__":
    sys.exit(main())
