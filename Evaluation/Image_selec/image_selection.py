"""Standalone intersection: runs uncertainty, diversity and novelty, intersects them and writes
results/intersection/ (ranked indices, combined scores, overlap figure, image grid, to_label.csv)."""
import contextlib
import sys
from pathlib import Path

from labelnext import heuristics as alf
from labelnext.analysis.main import (
    FLAGS,
    add_all_analysis_args,
    analyzer_from_args,
    analyzer_parser,
    check_args,
    check_pool_args,
)
from labelnext.utils.console import run_cli


def main(argv=None):
    p = analyzer_parser("Image selection: the items kept by uncertainty AND diversity AND novelty, ranked by a "
                        "combined score, filled up to --budget by combined rank, with a class-balance check.")
    add_all_analysis_args(p)
    p.add_argument("--budget", type=int, default=None, help="selection size (default: the intersection as it is)")
    p.add_argument("--use-gnn", action="store_true", help="let the GraphSAGE sidecar's selection join the intersection")
    args = p.parse_args(argv)
    check_args(args, *alf.ANALYSES)
    with contextlib.redirect_stdout(sys.stderr):  # progress, Keras' included, goes to stderr
        an = analyzer_from_args(args)
        params = check_pool_args(an, args, *alf.ANALYSES)
        an.run_all(**{f"{name}_params": params[name] for name in alf.ANALYSES})
        an.find_intersection(budget=args.budget, use_gnn=args.use_gnn, retrain=False)
        csv_path = an.export_labeling_csv()
    print(an.get_summary())
    print(f"  written to {Path(args.results_dir) / 'intersection'}/; labeling sheet: {csv_path}")


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
