"""Large pools: the analysis in memory, from disk, and on a Dask cluster, in passes of ``X @ W``.

    python benchmarks/distributed_scale.py --pool 1000000 --engine local --compare faiss
    python benchmarks/distributed_scale.py --pool 10000000 --engine disk --shard-rows 1000000
    python benchmarks/distributed_scale.py --pool 1000000 --engine dask --workers 2 --compare local

Every run is a fresh process (``--child``) so its peak memory is its own. Reported:
seconds per stage; ``passes`` = seconds / the time of one ``X @ W`` pass (X the pool's
raw embeddings, W 576 x 20 float32) measured in the same process just before; peak RSS
(VmHWM, reset after the pool is built, so it counts the pool the process holds and
the analysis; from disk it also counts the mapped shard pages, so the sampled peak of
anonymous memory is reported beside it) and the 1-minute load average before and after (2 cores: a load above 2
means other jobs competed).

Engines:

* ``local``: ``AL_functions.analyze`` on the pool in memory (novelty method ``auto``).
  ``--compare faiss`` runs it again with the exact flat search and reports the Jaccard
  overlap of the two selections (and of the novelty masks).
* ``disk``: the pool written as ``.npy`` shards (``--shard-rows``), read back lazily
  (:mod:`shards`) by ``analyze``; probabilities in memory. ``X @ W`` is streamed from
  the shards block by block (a pass from disk: it includes reading the rows).
* ``dask``: ``engine.analyze_sharded`` on a ``LocalCluster`` of ``--workers`` processes
  (1 thread each) reading the shards, or ``--scheduler tcp://host:8786`` for an existing
  cluster whose workers see ``--workdir``; ``--compare local`` also runs ``analyze`` on
  the same shards in this process and reports ``jaccard_vs_local``.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402

from scale import PeakMemory, status_kb  # noqa: E402  (one memory probe for both scale scripts)


def _load():
    return round(os.getloadavg()[0], 2)


def _jaccard(a, b):
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return round(len(a & b) / max(1, len(a | b)), 4)


def _pass_seconds(x, w):
    """Seconds of one X @ W over all rows, read block by block (X may be lazy)."""
    from shards import iter_blocks

    t = time.perf_counter()
    for _, _, block in iter_blocks(x, 65_536):
        block @ w
    return time.perf_counter() - t


def _make(args, out=None):
    from synthetic import make_pool

    return make_pool(args.pool, args.dim, args.classes, args.labeled, n_centers=args.centers,
                     random_state=args.seed, out=out)


class _ShardWriter:
    """``out[start:stop] = rows`` for make_pool, written straight into .npy shards (no full copy)."""

    def __init__(self, folder, n, d, rows_per_shard):
        folder.mkdir(parents=True, exist_ok=True)
        self.bounds = list(range(0, n, rows_per_shard)) + [n]
        self.parts = [np.lib.format.open_memmap(folder / f"part-{i:05d}.npy", mode="w+", dtype=np.float32,
                                                shape=(self.bounds[i + 1] - self.bounds[i], d))
                      for i in range(len(self.bounds) - 1)]

    def __setitem__(self, key, rows):
        start, stop = key.start, key.stop
        for i, part in enumerate(self.parts):
            lo, hi = self.bounds[i], self.bounds[i + 1]
            s, e = max(start, lo), min(stop, hi)
            if s < e:
                part[s - lo:e - lo] = rows[s - start:e - start]

    def close(self):
        for part in self.parts:
            part.flush()
        self.parts = []


def _write_pool(args, workdir):
    """Embeddings as .npy shards, probs and mask as .npy; returns the shard folder."""
    writer = _ShardWriter(workdir / "emb", args.pool, args.dim, args.shard_rows)
    _, probs, _, mask = _make(args, out=writer)
    writer.close()
    np.save(workdir / "probs.npy", probs)
    np.save(workdir / "mask.npy", mask)
    return workdir / "emb"


def _selection_record(res, seconds):
    return {"seconds": {k: round(v, 3) for k, v in seconds.items()},
            "n_intersection": int(res["intersection"]["info"]["n_intersection"])}


def child_local(args):
    import AL_functions as alf

    emb, probs, _, mask = _make(args)
    w = np.random.default_rng(0).standard_normal((args.dim, 20)).astype(np.float32)
    rec = {"engine": "local", "n": args.pool, "dim": args.dim, "labeled": int(mask.sum()), "load_before": _load()}
    rec["pass_seconds"] = round(_pass_seconds(emb, w), 5)
    PeakMemory.reset_hwm()
    t = time.perf_counter()
    res = alf.analyze(probs, emb, mask, {"novelty": {"method": args.knn}}, args.budget, random_state=args.seed)
    rec["seconds"] = round(time.perf_counter() - t, 3)
    rec["stages"] = {m: round(res[m]["seconds"], 3) for m in alf.ANALYSES}
    rec["passes"] = round(rec["seconds"] / rec["pass_seconds"], 1)
    rec["peak_rss_mb"] = round(status_kb("VmHWM") / 1024)
    import knn

    rec["knn"] = knn.knn_method_for(int((~mask).sum()), int(mask.sum()), args.dim) if args.knn == "auto" else args.knn
    if args.compare == "faiss":
        t = time.perf_counter()
        exact = alf.analyze(probs, emb, mask, {"novelty": {"method": "faiss"}}, args.budget, random_state=args.seed)
        rec["exact_seconds"] = round(time.perf_counter() - t, 3)
        rec["exact_passes"] = round(rec["exact_seconds"] / rec["pass_seconds"], 1)
        rec["jaccard_vs_exact"] = _jaccard(res["intersection"]["rows"], exact["intersection"]["rows"])
        m1, m2 = res["novelty"]["mask"], exact["novelty"]["mask"]
        rec["novelty_mask_jaccard"] = round(float((m1 & m2).sum() / (m1 | m2).sum()), 4)
    rec["load_after"] = _load()
    return rec


def child_disk(args):
    import AL_functions as alf
    import shards

    workdir = Path(args.workdir)
    t = time.perf_counter()
    _write_pool(args, workdir)
    rec = {"engine": "disk", "n": args.pool, "dim": args.dim, "shard_rows": args.shard_rows,
           "write_seconds": round(time.perf_counter() - t, 1), "load_before": _load()}
    emb = shards.open_rows(workdir / "emb")
    probs, mask = np.load(workdir / "probs.npy"), np.load(workdir / "mask.npy")
    w = np.random.default_rng(0).standard_normal((args.dim, 20)).astype(np.float32)
    rec["pass_seconds"] = round(_pass_seconds(emb, w), 5)
    memory = PeakMemory()
    memory.reset()
    t = time.perf_counter()
    res = alf.analyze(probs, emb, mask, None, args.budget, random_state=args.seed)
    rec["peak_anon_mb"] = memory.read()["peak_anon_mb"]
    memory.close()
    rec["seconds"] = round(time.perf_counter() - t, 3)
    rec["stages"] = {m: round(res[m]["seconds"], 3) for m in alf.ANALYSES}
    rec["passes"] = round(rec["seconds"] / rec["pass_seconds"], 1)
    rec["peak_rss_mb"] = round(status_kb("VmHWM") / 1024)
    rec["disk_gb"] = round(shards.folder_bytes(workdir / "emb") / 1e9, 2)
    rec["load_after"] = _load()
    return rec


def _worker_memory_mb():
    """A worker's peak RSS (VmHWM, file pages of mapped shards included) and its anonymous memory now."""
    return {"peak_rss": round(status_kb("VmHWM") / 1024), "anon_now": round(status_kb("RssAnon") / 1024)}


def child_dask(args):
    import engine
    from distributed import Client, LocalCluster

    workdir = Path(args.workdir)
    import shards

    folder = _write_pool(args, workdir)
    mask = np.load(workdir / "mask.npy")
    rec = {"engine": "dask", "n": args.pool, "dim": args.dim, "ranks": args.ranks, "load_before": _load()}
    w = np.random.default_rng(0).standard_normal((args.dim, 20)).astype(np.float32)
    rec["pass_seconds"] = round(_pass_seconds(shards.open_rows(folder), w), 5)
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    try:
        t = time.perf_counter()
        res = engine.analyze_sharded(client, workdir / "emb", workdir / "probs.npy", mask, None, args.budget,
                                     random_state=args.seed, ranks=args.ranks)
        rec["seconds"] = round(time.perf_counter() - t, 3)
        rec["stages"] = {k: round(v, 3) for k, v in res["engine"]["seconds"].items()}
        rec["workers"] = res["engine"]["workers"]
        rec["tasks"] = res["engine"]["tasks"]
        rec["knn"] = res["engine"]["knn"]["method"]
        rec["passes"] = round(rec["seconds"] / rec["pass_seconds"], 1)
        rec["memory_mb_per_worker"] = list(client.run(_worker_memory_mb).values())
        rec["client_peak_rss_mb"] = round(status_kb("VmHWM") / 1024)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if args.compare == "local":
        import AL_functions as alf

        t = time.perf_counter()
        local = alf.analyze(np.load(workdir / "probs.npy"), shards.open_rows(folder), mask, None, args.budget,
                            random_state=args.seed)
        rec["local_seconds"] = round(time.perf_counter() - t, 3)
        rec["jaccard_vs_local"] = _jaccard(res["intersection"]["rows"], local["intersection"]["rows"])
    rec["load_after"] = _load()
    return rec


CHILDREN = {"local": child_local, "disk": child_disk, "dask": child_dask}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=576)
    p.add_argument("--labeled", type=int, default=5000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--centers", type=int, default=50)
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", choices=sorted(CHILDREN), default="local")
    p.add_argument("--workers", type=int, default=2, help="dask: local worker processes")
    p.add_argument("--scheduler", default=None, help="dask: address of an existing scheduler instead of a local cluster")
    p.add_argument("--ranks", choices=("exact", "sketch"), default="exact", help="dask: exact ranks or sketch + top-k merge")
    p.add_argument("--knn", default="auto", help="local: novelty's nearest-neighbour method (auto, ivf, faiss, ...)")
    p.add_argument("--shard-rows", type=int, default=250_000)
    p.add_argument("--compare", choices=("none", "faiss", "local"), default="none")
    p.add_argument("--workdir", default=None, help="where shards are written (default: a temporary folder)")
    p.add_argument("--json", default=None, metavar="PATH")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.engine](args)))
        return 0
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        cmd = [sys.executable, __file__, "--child"] + list(argv or sys.argv[1:]) + ["--workdir", tmp]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            sys.stderr.write(out.stderr)
            return out.returncode
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(rec, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rec, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
