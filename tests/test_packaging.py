"""The install contract: one top-level package, nothing else overwritten, a lazy public API, rooms without cycles."""
import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "labelnext"
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# The modules our users import by name stand beside the package; nothing else is installed at the top.
DESIGN_CARD_MODULES = {"AL_cycle", "AL_functions"}
MAX_LINES = 600


def _requirements():
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    return {r.name.lower(): r for r in map(Requirement, filter(None, lines))}


def test_root_holds_only_the_named_scripts():
    assert sorted(p.name for p in REPO.glob("*.py")) == ["AL_cycle.py", "AL_functions.py", "train.py"]


def test_requirements_pin_every_dependency_and_torch_exactly():
    pins = _requirements()
    # A CPU build of exactly this torch is on the machine; any other version pulls a multi-GB CUDA build.
    assert str(pins["torch"].specifier) == "==2.13.0"
    declared = [Requirement(r) for r in CONFIG["project"]["dependencies"]]
    for extra in CONFIG["project"]["optional-dependencies"].values():
        declared += [Requirement(r) for r in extra if not r.startswith("labelnext[")]
    missing = sorted({r.name.lower() for r in declared} - set(pins))
    assert missing == [], f"requirements.txt does not pin {missing}"
    assert CONFIG["project"]["scripts"] == {"al": "labelnext.cli:entry"}


def _module_imports(path):
    """labelnext modules a file imports at module level (imports inside functions are lazy on purpose)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("labelnext")}


def _modules():
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def test_no_import_cycle_between_modules_and_no_long_file():
    mods = _modules()
    graph = {name: {m for m in _module_imports(path) if m in mods and m != name} for name, path in mods.items()}
    # A package's __init__ importing its own submodules is not a cycle of rooms.
    for name in graph:
        graph[name] = {m for m in graph[name] if not (m.startswith(name + ".") and mods[name].name == "__init__.py")}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []
    long = {str(p.relative_to(REPO)): n for p in [*PACKAGE.rglob("*.py"), *REPO.glob("*.py")]
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_public_api_loads_neither_tensorflow_nor_torch():
    code = ("import sys; from labelnext import LabelingProject, ActiveLearningAnalyzer, select, load_dataset; "
            "bad = [m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules]; assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources it builds.
    src = tmp_path_factory.mktemp("src") / "labelnext-src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", ".cache", "results",
                                                             "models", "__pycache__", ".pytest_cache"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(out), str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named pip" in proc.stderr:
        pytest.skip("pip is not available in this interpreter")
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("labelnext-*.whl")
    return path


def test_wheel_holds_one_package_and_the_page(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"labelnext", "AL_cycle.py", "AL_functions.py"}
    for page in ("index.html", "app.js", "style.css"):
        assert f"labelnext/labeling/static/{page}" in names


def test_install_leaves_a_neighbouring_datasets_package_alone(wheel, tmp_path):
    prefix = tmp_path / "site"
    theirs = prefix / "datasets" / "__init__.py"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("def load_dataset(name):\n    return 'theirs'\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(prefix),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert theirs.read_text() == "def load_dataset(name):\n    return 'theirs'\n"
    installed = {p.name for p in prefix.iterdir() if not p.name.endswith(".dist-info")} - {"bin", "__pycache__"}
    assert installed == {"datasets", "labelnext", "AL_cycle.py", "AL_functions.py"}
    # A user's folder with its own datasets/ package: ours must not be confused with it.
    work = tmp_path / "work"
    (work / "datasets").mkdir(parents=True)
    (work / "datasets" / "__init__.py").write_text("raise ImportError('the user folder datasets was imported')\n")
    env = dict(os.environ, PYTHONPATH=str(prefix), TF_CPP_MIN_LOG_LEVEL="3")
    for argv in (["-m", "labelnext", "--help"], [str(prefix / "bin" / "al"), "--help"]):
        proc = subprocess.run([sys.executable, *argv], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "al init" in proc.stdout
    code = ("import sys, labelnext; from labelnext import LabelingProject, ActiveLearningAnalyzer; "
            "assert labelnext.__file__.startswith(sys.argv[1]), labelnext.__file__; "
            "from labelnext.data import dataset_fingerprint; import AL_functions; AL_functions.entropy_scores")
    proc = subprocess.run([sys.executable, "-c", code, str(prefix)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
