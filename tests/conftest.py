import gc
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The repository (labelnext, benchmarks) and tests/ (helpers) for every test folder.
sys.path[:0] = [str(REPO), str(REPO / "tests")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After each test, its fixtures torn down: collect its garbage, then freeze what survives.

    What survives a test lives long (imported modules, TensorFlow's and PyTorch's among them;
    module and session fixtures). Frozen, it is no longer walked by full collections: Keras'
    clear_session() runs one at every Trainer start and Python its own gen-2 passes, each ~0.4 s
    over the ~700k objects the imports leave (measured: 21 s of tests/loop and tests/analysis'
    240 s). Nothing a test checks depends on the collector; a frozen object that later becomes
    cyclic garbage (a module fixture's Keras model) is not freed, a few MB at most."""
    yield
    gc.collect()
    gc.freeze()
