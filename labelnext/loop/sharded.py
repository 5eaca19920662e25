"""A round on a pool of embedding shards (``al init DATA --embeddings FOLDER``), memory flat in the pool.

The pool never enters memory whole (:mod:`scale.embedding_shards` reads it in place):

1. the standardisation's mean and variance, summed block by block (:func:`knn.standardization_stats`);
2. the learner trained on the labeled rows only (read with ``x[rows]``);
3. one prediction pass, block by block, into ``probs.npy`` (memory-mapped; a state file beside it
   records the rows done, so a killed round resumes with the same model), moved into ``round-NNN/``;
4. evaluation on the test split's rows and on the labeled audit items;
5. a selection that streams (:data:`STREAMING`): ``intersection`` (uncertain, diverse and novel at
   once: :func:`heuristics.analyze` on the lazy, standardised pool, or on a Dask cluster with
   ``scheduler``, :func:`scale.engine.analyze_sharded` with exact ranks, the same selection); the
   uncertainty scores' top items kept block by block; or ``random``. ``auto`` is ``intersection``.

What grows with the pool: the labels, masks and probabilities (memory-mapped) and the intersection's
per-item scores, tens of bytes per item; the KMeans of the diversity analysis holds a sample of at
most 100,000 standardised rows. The audit items not yet labeled are outside the pool like the labeled
ones, so the novelty analysis measures distances to them too (their labels are never read).
"""
import os
import shutil
import time

import numpy as np

from pathlib import Path

from labelnext import heuristics, knn
from labelnext.data.listing import LISTED, listable
from labelnext.io.files import load_json, save_json
from labelnext.loop.evaluation import audit_size, draw_audit, measure, mix
from labelnext.loop.learner import candidates_for
from labelnext.loop.ledger import finish, previous_summary, round_rows, stop_signal
from labelnext.loop.round import round_trainer, selection_seed
from labelnext.scale import embedding_shards, engine
from labelnext.scale.embedding_shards import LAYOUT  # noqa: F401 -- project.json's mark of a project on shards
from labelnext.training.backbones import GRAPH_ARCHS, Moments
from labelnext.training.fingerprint import model_fingerprint
from labelnext.utils.checks import chunks, rows_per_block
from labelnext.utils.extras import require

# Selections that read the pool a block at a time; every other strategy needs it whole in memory.
STREAMING = ("intersection", "entropy", "margin", "least_confidence", "random")
AUTO_REASON = ("the pool is a folder of embedding shards: intersection (uncertain, diverse and novel at once), "
               "the selection that streams")
PROBS_FILE, STATE_FILE = "probs.npy", "state.json"
# Rows the learner predicts per call (feature vectors: a few MB at most).
PREDICT_BATCH = 8192


def shards_request(embeddings, dataset, kind, arch=None):
    """``(on_shards, kind)``: whether ``--embeddings`` is a folder of shards, and the ``kind=`` DATA is read
    with (``listed`` where :func:`data.listing.listable`: identities and labels, nothing decoded). ``spread``
    and ``blend`` are refused there: its graph holds every item in memory."""
    on_shards = embeddings is not None and Path(embeddings).expanduser().is_dir()
    if on_shards and arch in GRAPH_ARCHS:
        raise ValueError(f"--arch {arch} keeps the whole pool's neighbour graph in memory; a pool of embedding shards "
                         "trains logreg (the default), mlp, linear or auto")
    return on_shards, (LISTED if on_shards and listable(dataset) else kind)


def _counts(ds):
    return len(ds.y_train), 0 if ds.y_test is None else len(ds.y_test)


def check_shards(folder, ds, holdout=False):
    """``al init``'s one streamed pass over the shards (:func:`scale.embedding_shards.check_folder`)."""
    return embedding_shards.check_folder(folder, *_counts(ds))


def reopen(project_folder, record, ds):
    """``(pool, test)`` of a project on shards after the cheap re-check (:func:`scale.embedding_shards.reopen`)."""
    shards_pool = embedding_shards.reopen(record, *_counts(ds))
    return shards_pool.pool, shards_pool.test


def check_round(config, path, strategy, scheduler):
    """Whether the project's pool is on shards; refuses what such a round cannot run, and ``scheduler``
    on a pool in memory."""
    if (config.get("embeddings") or {}).get("layout") == LAYOUT:
        resolve(strategy, scheduler)
        return True
    if scheduler is not None:
        raise ValueError(f"--scheduler runs the selection of a pool of embedding shards (al init DATA --embeddings "
                         f"FOLDER) on a Dask cluster; {str(path)!r} holds its pool in memory: leave out --scheduler")
    return False


def resolve(strategy, scheduler=None):
    """``(method, reason)`` a sharded project runs for ``strategy``; ValueError naming those that work."""
    method, reason = ("intersection", AUTO_REASON) if strategy == "auto" else (strategy, None)
    if method not in STREAMING:
        raise ValueError(f"--strategy {strategy} needs the whole pool in memory; a pool of embedding shards "
                         f"selects with {', '.join(('auto', *STREAMING))}")
    if scheduler is not None and method != "intersection":
        raise ValueError(f"--scheduler runs the intersection (--strategy intersection or auto) on the cluster; "
                         f"--strategy {strategy} streams in this process: leave out --scheduler")
    return method, reason


def predict_pool(trainer, pool, folder, key, n_classes, progress):
    """The trainer's probabilities for every row of ``pool`` in ``folder/probs.npy``, block by block.

    ``folder/state.json`` holds ``key`` (the model and the shards) and the rows done, written after the
    block is flushed: a rerun with the same key resumes there, another key starts again.

    Returns
    -------
    memmap of shape (n, n_classes), float32, read-only
    """
    n = pool.shape[0]
    probs_file, state_file = folder / PROBS_FILE, folder / STATE_FILE
    state = load_json(state_file) if state_file.is_file() else None
    if state is None or state.get("key") != key or not probs_file.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        np.lib.format.open_memmap(probs_file, mode="w+", dtype=np.float32, shape=(n, n_classes)).flush()
        state = {"key": key, "rows_done": 0}
        save_json(state_file, state)
    elif state["rows_done"]:
        progress(f"resuming the predictions at row {state['rows_done']:,}")
    step = rows_per_block(pool.shape[1])
    for start, stop in chunks(n, step):
        if stop <= state["rows_done"]:
            continue
        probs, _ = trainer.predict(pool[start:stop], batch_size=PREDICT_BATCH)
        out = np.lib.format.open_memmap(probs_file, mode="r+")  # mapped per block: written pages leave the process
        out[start:stop] = probs
        out.flush()
        del out
        state["rows_done"] = stop
        save_json(state_file, state)
    return np.load(probs_file, mmap_mode="r")


def top_uncertain(probs, selectable, budget, method):
    """The ``budget`` selectable rows of highest ``method`` uncertainty, best first (ties: lower row),
    keeping only ``budget`` candidates while the probabilities are read block by block."""
    rows, scores = np.zeros(0, np.int64), np.zeros(0)
    for start, stop in chunks(len(selectable), rows_per_block(probs.shape[1])):
        keep = np.flatnonzero(selectable[start:stop])
        if not keep.size:
            continue
        s = heuristics.uncertainty_scores(np.asarray(probs[start:stop])[keep], method)
        rows, scores = np.concatenate([rows, start + keep]), np.concatenate([scores, s])
        if rows.size > budget:
            best = np.lexsort((rows, -scores))[:budget]
            rows, scores = rows[best], scores[best]
    return rows[np.lexsort((rows, -scores))]


def select(method, probs, pool, moments, outside, budget, random_state, *, client=None, shards_folder=None):
    """``budget`` rows of the pool (not ``outside``) by ``method``; the engine's record beside them."""
    if method == "random":
        rows = np.random.RandomState(random_state).choice(np.flatnonzero(~outside), budget, replace=False)
        return rows.astype(np.int64), {"name": "local", "workers": 1}
    if method != "intersection":
        return top_uncertain(probs, ~outside, budget, method), {"name": "local", "workers": 1}
    if client is None:
        view = knn.StandardizedView(pool, *moments)
        res = heuristics.analyze(probs, view, outside, budget=budget, random_state=random_state, standardized=True)
        info = {"name": "local", "workers": 1}
    else:
        res = engine.analyze_sharded(client, shards_folder, os.fspath(probs.filename), outside, None, budget,
                                     random_state=random_state, ranks="exact", kmeans="client", n_rows=pool.shape[0])
        info = {"name": "dask", "workers": res["engine"]["workers"], "ranks": "exact",
                "seconds": {k: round(v, 2) for k, v in res["engine"]["seconds"].items()}}
    return np.flatnonzero(~outside)[res["intersection"]["rows"]], info


def run(project, budget, strategy, scheduler=None):
    """One round of ``project`` (a :class:`loop.project.LabelingProject` on shards): see the module docstring.

    Returns
    -------
    dict: the round's record (``round.json``) with ``selected`` and ``folder``.
    """
    method, reason = resolve(strategy, scheduler)
    frame = round_rows(project, budget)
    ds = project.data  # lists the items and re-checks the shards
    client = None if scheduler is None else require("distributed", "scale", "--scheduler").Client(scheduler)
    try:
        return _run(project, ds, project._embeddings, frame, budget, strategy, method, reason, client, scheduler)
    finally:
        if client is not None:
            client.close()


def _run(project, ds, inputs, frame, budget, strategy, method, reason, client, scheduler):
    config, seed = project.config, project.config["seed"]
    labels, audited, train_labels, selectable = frame.labels, frame.audited, frame.train_labels, frame.selectable
    outside = ~selectable  # labeled or audited: what no selection may pick (this round's audit joins below)
    previous = frame.done[-1] if frame.done else None
    number = project.store.start_round(strategy=strategy)
    say = lambda line: project.progress(f"round {number}: {line}")  # noqa: E731
    (pool, x_test), rows = inputs, np.flatnonzero(train_labels >= 0)
    arch, features = config["arch"], "embeddings"
    say(f"standardisation statistics of {pool.shape[0]:,} rows of {config['embeddings']['source']} ...")
    mean, std = moments = knn.standardization_stats(pool)  # block by block; the analyses standardise with it too
    trainer = round_trainer(pool.shape[1:], len(project.class_names), arch=arch, weights=None,
                            candidates=[c for c in candidates_for(ds.kind_info, features) if c not in GRAPH_ARCHS],
                            features=features,
                            steps=config["steps"], epochs_per_fit=config.get("epochs_per_fit", 0.0))
    trainer.start(seed, adapt=Moments(mean, np.square(std)))
    info = dict(trainer.fit(pool[rows], train_labels[rows], seed).info_)
    info["train_seconds"] = round(info["train_seconds"], 2)
    say(f"trained {getattr(trainer, 'arch_', arch)} on {rows.size} labels; predicting {pool.shape[0]:,} rows ...")
    work = project.path / f".predict-{number:03d}"
    key = {"model": model_fingerprint(trainer.model_), "shards": config["embeddings"]["digest"], "n": pool.shape[0]}
    probs = predict_pool(trainer, pool, work, key, len(project.class_names), say)
    test = None
    if x_test is not None and len(ds.y_test):
        test = measure(trainer.predict(x_test, batch_size=PREDICT_BATCH)[0], ds.y_test)
    audit_now = draw_audit(selectable, audit_size(budget, config.get("audit", 0.0)),
                           np.random.RandomState([seed, number, 1]))
    outside[audit_now] = True
    t = time.perf_counter()
    where = f" on the cluster at {scheduler}" if client else ""
    say(f"selecting {budget - len(audit_now)} by {method}{where} ...")
    picked, engine_info = select(method, probs, pool, moments, outside, budget - len(audit_now),
                                 selection_seed(seed, number), client=client, shards_folder=config["embeddings"]["source"])
    select_seconds = time.perf_counter() - t
    chosen = mix(picked, audit_now, np.random.RandomState([seed, number, 2]))
    graded = audited[labels[audited] >= 0]
    audit = measure(np.asarray(probs[graded]), labels[graded]) if config.get("audit") else None
    stop_pred, stop_kappa = stop_signal(previous and project.path / f"round-{previous['round']:03d}", probs, seed)
    record = {
        "round": number, "strategy": strategy, "method": method, "method_reason": reason, "selection_space": "model",
        "features": features, "arch": getattr(trainer, "arch_", arch), "budget": int(budget),
        "n_labeled": int(rows.size), "n_pool": frame.n_pool, "pool": "shards",
        "evaluation": "test" if test is not None else "audit", "metrics": test or audit, "audit": audit,
        "n_audit": int(len(audit_now)), "stop_kappa": stop_kappa, "train": info,
        "select_seconds": round(select_seconds, 3), "engine": engine_info, "previous": previous_summary(previous),
    }
    folder = project._write_round(number, trainer.model_, rows, chosen, probs, record,
                                  {"audit.npy": audit_now, "stop_predictions.npy": stop_pred})
    del probs
    os.replace(work / PROBS_FILE, folder / PROBS_FILE)  # the round's predictions, kept with it
    shutil.rmtree(work, ignore_errors=True)
    return finish(project, record, folder, chosen)
