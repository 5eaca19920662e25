"""Standalone novelty analysis: writes results/novelty/ (indices, scores, summary, figures)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from AL_cycle import add_novelty_args, analyzer_from_args, analyzer_parser  # noqa: E402
from cli import run_cli  # noqa: E402


def main(argv=None):
    p = analyzer_parser("Novelty analysis: mean distance from each pool item to its k nearest LABELED items; "
                        "keep the top percentile.")
    add_novelty_args(p)
    args = p.parse_args(argv)
    an = analyzer_from_args(args)
    an.run_novelty(k_neighbors=args.k_neighbors, novelty_percentile=args.novelty_percentile, method=args.knn)
    print(an.get_summary())
    print(f"  written to {Path(args.results_dir) / 'novelty'}/")


if __name__ == "__main__":
    sys.exit(run_cli(main))
