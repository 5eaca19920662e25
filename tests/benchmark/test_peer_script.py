"""benchmarks.peer_skactiveml: --help, the one line without scikit-activeml, and its feature flattening.

No real run here: the comparison trains both sides for minutes (docs/BENCHMARKS.md holds measured ones).
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import peer_skactiveml as peer

REPO = Path(__file__).resolve().parents[2]


def run(*args):
    # PYTHONPATH is the repository only: a folder that holds skactiveml elsewhere is not on it.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "benchmarks.peer_skactiveml", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=60)


def test_help_lists_the_flags():
    res = run("--help")
    assert res.returncode == 0, res.stderr
    for flag in ("--dataset", "--model", "--strategies", "--peer-strategies", "--initial", "--budget", "--rounds",
                 "--seeds", "--out"):
        assert flag in res.stdout
    assert "scikit-activeml==1.0.1" in res.stdout


@pytest.mark.skipif(importlib.util.find_spec("skactiveml") is not None, reason="skactiveml is installed here")
def test_without_skactiveml_one_line_and_code_2(tmp_path):
    res = run("--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [peer.INSTALL_HINT]
    assert "pip install scikit-activeml==1.0.1" in res.stderr
    assert not (tmp_path / "out").exists()


def test_grey_images_keep_one_channel_and_tables_stay():
    grey = np.repeat(np.arange(2 * 8 * 8).reshape(2, 8, 8, 1), 3, axis=-1).astype(np.uint8)
    assert peer.peer_features(grey).shape == (2, 64)
    colour = grey.copy()
    colour[0, 0, 0, 1] += 1
    assert peer.peer_features(colour).shape == (2, 192)
    table = np.ones((5, 16), dtype=np.float32)
    assert peer.peer_features(table).shape == (5, 16)
