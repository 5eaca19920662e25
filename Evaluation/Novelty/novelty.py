"""Standalone novelty analysis: writes results/novelty/ (indices, scores, summary, figures)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from AL_cycle import FLAGS, analysis_main  # noqa: E402
from cli import run_cli  # noqa: E402

DESCRIPTION = ("Novelty analysis: mean distance from each pool item to its k nearest LABELED items; "
               "keep the top percentile.")


def main(argv=None):
    analysis_main("novelty", DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
