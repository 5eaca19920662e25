"""Main job and the command-line arguments the scripts share.

``python AL_cycle.py`` trains the default base model if it is missing, runs
uncertainty, diversity and novelty, their intersection, the class-balance check and
the retraining, exports the embeddings for ``python -m gnn`` and prints the report.
The analyzer itself lives in ``analyzer.py``; it is re-exported here, so
``from AL_cycle import ActiveLearningAnalyzer`` keeps working.

Every argument is checked before the first file is written; errors name the flag
(:data:`FLAGS`). ``analyzer`` (and with it strategies, datasets, figures, Keras) is
imported when a job starts, not when the flags are parsed, so ``--help`` and argument
errors answer at once.
"""
import contextlib
import importlib
import sys
import time
from pathlib import Path

from labelnext.utils import checks
from labelnext.utils import defaults
from labelnext.io import files as results_io
from labelnext.utils.console import ArgumentParser, progress, run_cli

__all__ = ["analyzer_parser", "analyzer_from_args", "add_analysis_args", "add_all_analysis_args",
           "analysis_params_from_args", "run_all_from_args", "analysis_main", "build_parser", "main"]

DEFAULT_MODEL = defaults.DEFAULT_RUN / defaults.MODEL_FILE
TARGET_PER_CLASS, COMPARE_SEEDS, PATIENCE = defaults.TARGET_PER_CLASS, defaults.COMPARE_SEEDS, defaults.PATIENCE


def __getattr__(name):
    # PEP 562: `from AL_cycle import ActiveLearningAnalyzer` keeps working, loaded on first use.
    if name == "ActiveLearningAnalyzer":
        return importlib.import_module("labelnext.analysis.analyzer").ActiveLearningAnalyzer
    raise AttributeError(f"module 'labelnext.analysis.main' has no attribute {name!r}")


# analysis -> its flags: (flag, option of AL_functions.ANALYSIS_DEFAULTS[analysis], type, choices, help).
# The defaults come from ANALYSIS_DEFAULTS, so Python and the command line agree.
ANALYSIS_FLAGS = {
    "uncertainty": (
        ("--uncertainty-method", "method", str, defaults.UNCERTAINTY_METHODS, "combined = above the percentile on entropy OR margin"),
        ("--threshold-percentile", "threshold_percentile", float, None, "uncertainty: keep items at or above this percentile (0-100)"),
    ),
    "diversity": (
        ("--n-clusters", "n_clusters", int, None, "diversity: KMeans clusters"),
        ("--distance-percentile", "distance_percentile", float, None, "diversity: keep items at or above this percentile of distance to their centroid"),
        ("--kmeans", "algorithm", str, defaults.KMEANS_ALGORITHMS, "KMeans variant (auto: full KMeans up to 20k items, MiniBatchKMeans above)"),
    ),
    "novelty": (
        ("--k-neighbors", "k_neighbors", int, None, "novelty: nearest labeled items averaged"),
        ("--novelty-percentile", "novelty_percentile", float, None, "novelty: keep items at or above this percentile (0-100)"),
        ("--knn", "method", str, defaults.KNN_METHODS, "nearest-neighbour search (auto: NumPy exact up to 1e8 pairs, then faiss exact or hnswlib by a measured cost model; see knn.knn_method_for)"),
    ),
}


def _dest(flag):
    return flag.lstrip("-").replace("-", "_")


# Python parameters -> the flags that set them: errors from the library name the flag (cli.flag_message).
FLAGS = {"name": "--dataset", "dataset": "--dataset", "data_dir": "--data-dir", "random_state": "--seed", "seed": "--seed",
         "model_path": "--model", "labeled_size": "--labeled-size", "start_idx": "--start-idx", "end_idx": "--end-idx",
         "target_per_class": "--target-per-class", "budget": "--budget", "steps": "--steps", "retrain_steps": "--steps",
         "compare_seeds": "--compare-seeds", "retrain_patience": "--patience", "patience": "--patience", "results_dir": "--results-dir",
         **{option: flag for flags in ANALYSIS_FLAGS.values() for flag, option, *_ in flags if option not in ("method", "algorithm")}}


def analyzer_parser(description):
    """Arguments every script shares: model, data, pool range, seed, results folder."""
    p = ArgumentParser(description=description)
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="base model (.keras or run folder); the default is trained first if missing")
    p.add_argument("--dataset", default=None, help="data set (default: the model's): 'digits', 'cifar10' or a path (CIFAR-10 pickle folder, ROOT/{train,test}/<class>/ image tree, .npz, .tar.gz of a tree, a table or text .csv/.tsv/.parquet)")
    p.add_argument("--data-dir", default=None, help="folder holding the 'cifar10' data")
    p.add_argument("--labeled-size", type=int, default=None, help="expected size of the model's labeled set; also the size drawn when the default model is trained (500)")
    p.add_argument("--start-idx", type=int, default=None, help="pool starts at this training index (default 0)")
    p.add_argument("--end-idx", type=int, default=None, help="pool ends before this training index (default: all)")
    p.add_argument("--target-per-class", type=int, default=TARGET_PER_CLASS, help="items per class wanted before retraining")
    p.add_argument("--seed", type=int, default=0, help="random state of every stochastic step")
    p.add_argument("--results-dir", default="results", help="where results are written")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def check_args(args, *analyses):
    """Check every parsed argument that needs no data, before anything is loaded or written:
    counts, seed, percentiles and sizes (their upper bounds need the pool: :func:`check_pool_args`),
    and that the results folder can be written."""
    checks.check_int(args.seed, "random_state", low=0)
    checks.check_int(args.target_per_class, "target_per_class", low=1)
    for name in ("labeled_size", "budget", "steps", "compare_seeds", "patience"):
        if getattr(args, name, None) is not None:
            checks.check_int(getattr(args, name), name, low=1)
    for name in ("start_idx", "end_idx"):
        if getattr(args, name) is not None:
            checks.check_int(getattr(args, name), name, low=0)
    for analysis in analyses:
        for flag, option, *_ in ANALYSIS_FLAGS[analysis]:
            value = getattr(args, _dest(flag))
            if option.endswith("percentile"):
                checks.check_percentile(value, option)
            elif option in ("n_clusters", "k_neighbors"):
                checks.check_int(value, option, low=1)
    results_io.check_output_folder(args.results_dir)


def analyzer_from_args(args):
    """Build the analyzer a script asked for, training the default base model first if it is missing."""
    analyzer = importlib.import_module("labelnext.analysis.analyzer")  # see the module docstring: not needed to parse flags
    model = Path(args.model)
    if not model.exists() and model.resolve() in (DEFAULT_MODEL.resolve(), DEFAULT_MODEL.parent.resolve()):
        progress("no base model yet: training the default one (models/500_train) ...", not args.quiet)
        analyzer.train.train_base_model(args.dataset or "digits", args.data_dir, labeled_size=args.labeled_size or 500,
                                        random_state=args.seed, patience=getattr(args, "patience", PATIENCE),
                                        out_dir=DEFAULT_MODEL.parent, verbose=0 if args.quiet else 2)
    return analyzer.ActiveLearningAnalyzer(
        model, labeled_size=args.labeled_size, start_idx=args.start_idx, end_idx=args.end_idx,
        target_per_class=args.target_per_class, dataset=args.dataset, data_dir=args.data_dir, results_dir=args.results_dir,
        random_state=args.seed, retrain_steps=getattr(args, "steps", None),
        compare_seeds=getattr(args, "compare_seeds", COMPARE_SEEDS), retrain_patience=getattr(args, "patience", PATIENCE),
        verbose=not args.quiet)


def check_pool_args(an, args, *analyses):
    """The checks that need the pool (``--n-clusters``, ``--k-neighbors``, ``--budget`` against its
    size), before the first analysis writes anything. Returns each analysis' options."""
    params = {name: an.analysis_params(name, analysis_params_from_args(args, name)) for name in analyses}
    if getattr(args, "budget", None) is not None:
        checks.check_int(args.budget, "budget", low=1, high=int(an.pool_mask_.sum()))
    return params


def add_analysis_args(p, analysis):
    """The flags of one analysis, with its defaults from ``AL_functions.ANALYSIS_DEFAULTS``."""
    for flag, option, type_, choices, help_ in ANALYSIS_FLAGS[analysis]:
        p.add_argument(flag, type=type_, choices=choices, default=defaults.ANALYSIS_DEFAULTS[analysis][option], help=help_)


def add_all_analysis_args(p):
    """Arguments of uncertainty, diversity and novelty together (main job, intersection script)."""
    for analysis in defaults.ANALYSES:
        add_analysis_args(p, analysis)


def analysis_params_from_args(args, analysis):
    """Parsed flags of one analysis as its ``run_<analysis>`` keywords."""
    return {option: getattr(args, _dest(flag)) for flag, option, *_ in ANALYSIS_FLAGS[analysis]}


def run_all_from_args(an, args):
    return an.run_all(**{f"{name}_params": analysis_params_from_args(args, name) for name in defaults.ANALYSES})


def analysis_main(analysis, description, argv=None):
    """Body of a standalone analysis script: parse, check, build the analyzer, run one analysis, report."""
    p = analyzer_parser(description)
    add_analysis_args(p, analysis)
    args = p.parse_args(argv)
    check_args(args, analysis)
    with contextlib.redirect_stdout(sys.stderr):  # Keras prints progress to stdout
        an = analyzer_from_args(args)
        params = check_pool_args(an, args, analysis)[analysis]
        getattr(an, f"run_{analysis}")(**params)
    print(an.get_summary())
    print(f"  written to {Path(args.results_dir) / analysis}/")


def build_parser():
    p = analyzer_parser("Main job: train the default base model if missing, run uncertainty, diversity and novelty, "
                        "their intersection, the class-balance check and the retraining, and print a report.")
    add_all_analysis_args(p)
    p.add_argument("--budget", type=int, default=None, help="selection size (default: 2 x target x classes, capped at the pool)")
    p.add_argument("--steps", type=int, default=None, help="step budget of each retraining fit (default: the base model's)")
    p.add_argument("--patience", type=int, default=PATIENCE,
                   help="early stopping of the retraining (and of the default base model when it is trained): a fit stops "
                        "after this many epochs without a better validation accuracy and keeps its best epoch")
    p.add_argument("--compare-seeds", type=int, default=COMPARE_SEEDS,
                   help="seeds the 'AL vs random' comparison of the retraining runs over; each adds two trainings "
                        "(one seed decides nothing; 3 or more report mean +/- sd)")
    p.add_argument("--no-retrain", action="store_true", help="stop after the class-balance check")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_args(args, *defaults.ANALYSES)
    t0 = time.perf_counter()
    # Progress (Keras' epoch lines included) goes to stderr; stdout holds the report only.
    with contextlib.redirect_stdout(sys.stderr):
        an = analyzer_from_args(args)
        params = check_pool_args(an, args, *defaults.ANALYSES)
        budget = args.budget if args.budget is not None else min(int(an.pool_mask_.sum()), 2 * args.target_per_class * an.n_classes)
        an.run_all(**{f"{name}_params": params[name] for name in defaults.ANALYSES})
        an.export_embeddings()  # the input of `python -m gnn`
        an.find_intersection(budget=budget, retrain=False)
        sheet = an.export_labeling_csv()
        if not args.no_retrain:
            if not an.check_class_balance()["met"]:
                progress("class targets not met: retraining on the partial class-balanced selection", not args.quiet)
            an.retrain(allow_shortfall=True)
    source = an.metadata.get("dataset_source", "")
    data = args.dataset or (source if source and Path(source).exists() else an.metadata.get("dataset", "digits"))
    print(importlib.import_module("labelnext.io.reports").job_report(an.get_summary(), args.results_dir, time.perf_counter() - t0,
                                                        sheet=sheet, dataset=data,
                                                        fully_labeled=bool((an.data.y_train >= 0).all())))


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
