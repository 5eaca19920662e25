"""Standalone diversity analysis: writes results/diversity/ (indices, scores, representatives, summary, figures)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from AL_cycle import FLAGS, analysis_main  # noqa: E402
from cli import run_cli  # noqa: E402

DESCRIPTION = ("Diversity analysis: KMeans on standardised embeddings; keep pool items far from their "
               "centroid and report each cluster's representative (closest) item.")


def main(argv=None):
    analysis_main("diversity", DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
