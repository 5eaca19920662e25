"""The scale benchmark's engines past the in-memory analyzer: ``analyze`` in passes of ``X @ W``,
from shards on disk, and on a Dask cluster (children of ``benchmarks/scale.py``).

Each function runs in a fresh process (``scale.py --child ENGINE``) so its peak memory is its
own, and returns one JSON-able record: ``seconds`` per stage, ``total_seconds``, ``passes`` =
seconds / the time of one ``X @ W`` pass (X the pool's raw embeddings, W d x 20 float32)
measured in the same process just before, peak memory, and the 1-minute load average before
and after (2 cores: a load above 2 means other jobs competed).

* ``analyze``: ``AL_functions.analyze`` on the pool in memory (novelty ``--knn``); with
  ``--compare faiss`` again with the exact flat search: ``jaccard_vs_exact`` and the novelty
  masks' Jaccard.
* ``disk``: the pool written as ``.npy`` shards (``--shard-rows``) and read back lazily
  (:mod:`shards`) by ``analyze``; probabilities in memory. The pass streams from the shards
  (it includes reading the rows); peak anonymous memory is reported beside VmHWM, which counts
  the mapped shard pages.
* ``dask``: ``engine.analyze_sharded`` on a ``LocalCluster`` of ``--workers`` processes (1
  thread each) reading the shards, or on ``--scheduler tcp://HOST:8786`` whose workers see
  ``--workdir``; ``--compare local`` (its default) also runs ``analyze`` on the same shards in
  this process: ``jaccard_vs_local``. Peak memory per worker: VmHWM and anonymous memory.

Shards are written under ``--workdir`` and deleted when the child ends.
"""
import os
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.memprobe import PeakMemory, status_mb, worker_memory_mb
from benchmarks.synthetic import make_pool


def load():
    return round(os.getloadavg()[0], 2)


def jaccard(a, b):
    """Jaccard overlap of two selections (arrays of indices)."""
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return round(len(a & b) / max(1, len(a | b)), 4)


def pass_seconds(x, dim):
    """Seconds of one X @ W over all rows, read block by block (X may be lazy)."""
    from labelnext.scale.shards import iter_blocks

    w = np.random.default_rng(0).standard_normal((dim, 20)).astype(np.float32)
    t = time.perf_counter()
    for _, _, block in iter_blocks(x, 65_536):
        block @ w
    return time.perf_counter() - t


def _make(args, out=None):
    return make_pool(args.n, args.dim, args.classes, args.labeled, n_centers=args.centers, random_state=args.seed,
                     out=out)


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


def _write_pool(args):
    """Embeddings as .npy shards, probs and mask as .npy under workdir/pool_N; returns the folder."""
    root = Path(args.workdir) / f"pool_{args.n}"
    writer = _ShardWriter(root / "emb", args.n, args.dim, args.shard_rows)
    _, probs, _, mask = _make(args, out=writer)
    writer.close()
    np.save(root / "probs.npy", probs)
    np.save(root / "mask.npy", mask)
    return root


def _record(engine, args, **extra):
    return {"engine": engine, "n": args.n, "dim": args.dim, "labeled": args.labeled, "load_before": load(), **extra}


def _finish(rec, seconds):
    rec["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    rec["passes"] = round(rec["total_seconds"] / rec["pass_seconds"], 1)
    rec["load_after"] = load()
    return rec


def child_analyze(args):
    from labelnext import heuristics as alf
    from labelnext import knn

    emb, probs, _, mask = _make(args)
    rec = _record("local", args, pass_seconds=round(pass_seconds(emb, args.dim), 5), workers=1)
    PeakMemory.reset_hwm()
    t = time.perf_counter()
    res = alf.analyze(probs, emb, mask, {"novelty": {"method": args.knn}}, args.budget, random_state=args.seed)
    rec["total_seconds"] = round(time.perf_counter() - t, 3)
    rec["peak_rss_mb"] = status_mb("VmHWM")
    rec["knn"] = knn.knn_method_for(int((~mask).sum()), int(mask.sum()), args.dim) if args.knn == "auto" else args.knn
    if args.compare == "faiss":
        t = time.perf_counter()
        exact = alf.analyze(probs, emb, mask, {"novelty": {"method": "faiss"}}, args.budget, random_state=args.seed)
        rec["exact_seconds"] = round(time.perf_counter() - t, 3)
        rec["exact_passes"] = round(rec["exact_seconds"] / rec["pass_seconds"], 1)
        rec["jaccard_vs_exact"] = jaccard(res["intersection"]["rows"], exact["intersection"]["rows"])
        m1, m2 = res["novelty"]["mask"], exact["novelty"]["mask"]
        rec["novelty_mask_jaccard"] = round(float((m1 & m2).sum() / (m1 | m2).sum()), 4)
    return _finish(rec, {m: res[m]["seconds"] for m in alf.ANALYSES})


def child_disk(args):
    from labelnext import heuristics as alf
    from labelnext.scale import shards

    t = time.perf_counter()
    root = _write_pool(args)
    try:
        rec = _record("disk", args, shard_rows=args.shard_rows, write_seconds=round(time.perf_counter() - t, 1),
                      workers=1)
        emb = shards.open_rows(root / "emb")
        probs, mask = np.load(root / "probs.npy"), np.load(root / "mask.npy")
        rec["pass_seconds"] = round(pass_seconds(emb, args.dim), 5)
        memory = PeakMemory()
        memory.reset()
        t = time.perf_counter()
        res = alf.analyze(probs, emb, mask, None, args.budget, random_state=args.seed)
        rec["total_seconds"] = round(time.perf_counter() - t, 3)
        rec["peak_anon_mb"] = memory.read()["peak_anon_mb"]
        memory.close()
        rec["peak_rss_mb"] = status_mb("VmHWM")
        rec["disk_gb"] = round(shards.folder_bytes(root / "emb") / 1e9, 2)
    finally:
        shutil.rmtree(root)
    return _finish(rec, {m: res[m]["seconds"] for m in alf.ANALYSES})


def child_dask(args):
    from distributed import Client, LocalCluster

    from labelnext.scale import engine
    from labelnext.scale import shards

    root = _write_pool(args)
    cluster = None
    try:
        mask = np.load(root / "mask.npy")
        rec = _record("dask", args, ranks=args.ranks, kmeans=args.kmeans,
                      pass_seconds=round(pass_seconds(shards.open_rows(root / "emb"), args.dim), 5))
        if args.scheduler:
            client = Client(args.scheduler)
        else:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            t = time.perf_counter()
            res = engine.analyze_sharded(client, root / "emb", root / "probs.npy", mask, None, args.budget,
                                         random_state=args.seed, ranks=args.ranks, kmeans=args.kmeans)
            rec["total_seconds"] = round(time.perf_counter() - t, 3)
            eng = res["engine"]
            rec.update(workers=eng["workers"], tasks=eng["tasks"], knn=eng["knn"]["method"], kmeans_info=eng["kmeans"])
            rec["peak_memory_mb_per_worker"] = list(client.run(worker_memory_mb).values())
            rec["client_peak_rss_mb"] = status_mb("VmHWM")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        if args.compare == "local":
            from labelnext import heuristics as alf

            t = time.perf_counter()
            local = alf.analyze(np.load(root / "probs.npy"), shards.open_rows(root / "emb"), mask, None, args.budget,
                                random_state=args.seed)
            rec["local_seconds"] = round(time.perf_counter() - t, 3)
            rec["jaccard_vs_local"] = jaccard(res["intersection"]["rows"], local["intersection"]["rows"])
            if "scores" in res["diversity"]:  # exact ranks: the two KMeans objectives on the pool
                inertia = [float(np.square(r["diversity"]["scores"], dtype=np.float64).sum()) for r in (res, local)]
                rec["kmeans_inertia_ratio_vs_local"] = round(inertia[0] / inertia[1], 4)
    finally:
        shutil.rmtree(root)
    return _finish(rec, eng["seconds"])


CHILDREN = {"analyze": child_analyze, "disk": child_disk, "dask": child_dask}
