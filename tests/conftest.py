import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The repository (labelnext, benchmarks) and tests/ (helpers) for every test folder.
sys.path[:0] = [str(REPO), str(REPO / "tests")]
