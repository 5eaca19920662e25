"""Train a base model: ``python train.py`` (``--help`` lists the flags).

Writes ``models/500_train/`` on the embedded digits by default. The trainer itself is
:mod:`labelnext.training.trainer`; this command line is :mod:`labelnext.training.cli`.
"""
import sys

from labelnext.training.cli import FLAGS, build_parser, main  # noqa: F401
from labelnext.utils.console import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
