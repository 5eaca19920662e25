"""Standalone uncertainty analysis: writes results/uncertainty/ (indices, scores, summary, figures)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from AL_cycle import FLAGS, analysis_main  # noqa: E402
from cli import run_cli  # noqa: E402

DESCRIPTION = ("Uncertainty analysis: keep the pool items the base model is least sure about "
               "(entropy, margin, least confidence, or combined = entropy OR margin above the percentile).")


def main(argv=None):
    analysis_main("uncertainty", DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
