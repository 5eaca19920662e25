"""Standalone uncertainty analysis: writes results/uncertainty/ (indices, scores, summary, figures)."""
import sys

from labelnext.analysis.main import FLAGS, analysis_main
from labelnext.utils.console import run_cli

DESCRIPTION = ("Uncertainty analysis: keep the pool items the base model is least sure about "
               "(entropy, margin, least confidence, or combined = entropy OR margin above the percentile).")


def main(argv=None):
    analysis_main("uncertainty", DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
