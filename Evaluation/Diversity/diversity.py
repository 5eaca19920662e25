"""Standalone diversity analysis: writes results/diversity/ (indices, scores, representatives, summary, figures)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from AL_cycle import add_diversity_args, analyzer_from_args, analyzer_parser  # noqa: E402
from cli import run_cli  # noqa: E402


def main(argv=None):
    p = analyzer_parser("Diversity analysis: KMeans on standardised embeddings; keep pool items far from their "
                        "centroid and report each cluster's representative (closest) item.")
    add_diversity_args(p)
    args = p.parse_args(argv)
    an = analyzer_from_args(args)
    an.run_diversity(n_clusters=args.n_clusters, distance_percentile=args.distance_percentile, algorithm=args.kmeans)
    print(an.get_summary())
    print(f"  written to {Path(args.results_dir) / 'diversity'}/")


if __name__ == "__main__":
    sys.exit(run_cli(main))
