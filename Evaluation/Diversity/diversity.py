"""Standalone diversity analysis: writes results/diversity/ (indices, scores, representatives, summary, figures)."""
import sys

from labelnext.analysis.main import FLAGS, analysis_main
from labelnext.utils.console import run_cli

DESCRIPTION = ("Diversity analysis: KMeans on standardised embeddings; keep pool items far from their "
               "centroid and report each cluster's representative (closest) item.")


def main(argv=None):
    analysis_main("diversity", DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
