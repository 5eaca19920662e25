"""Standalone uncertainty analysis: writes results/uncertainty/ (indices, scores, summary, figures)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from AL_cycle import add_uncertainty_args, analyzer_from_args, analyzer_parser  # noqa: E402
from cli import run_cli  # noqa: E402


def main(argv=None):
    p = analyzer_parser("Uncertainty analysis: keep the pool items the base model is least sure about "
                        "(entropy, margin, least confidence, or combined = entropy OR margin above the percentile).")
    add_uncertainty_args(p)
    args = p.parse_args(argv)
    an = analyzer_from_args(args)
    an.run_uncertainty(threshold_percentile=args.threshold_percentile, method=args.uncertainty_method)
    print(an.get_summary())
    print(f"  written to {Path(args.results_dir) / 'uncertainty'}/")


if __name__ == "__main__":
    sys.exit(run_cli(main))
