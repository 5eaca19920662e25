"""Standalone novelty analysis: writes results/novelty/ (indices, scores, summary, figures)."""
import sys

from labelnext.analysis.main import FLAGS, analysis_main
from labelnext.utils.console import run_cli

DESCRIPTION = ("Novelty analysis: mean distance from each pool item to its k nearest LABELED items; "
               "keep the top percentile.")


def main(argv=None):
    analysis_main("novelty", DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
