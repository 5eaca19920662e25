"""pyproject.toml installs every module of the repository, and only modules that exist."""
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUP = CONFIG["tool"]["setuptools"]
MODULES = SETUP["py-modules"]
PACKAGES = SETUP["packages"]

# Listed in pyproject.toml but landing from branches being merged at the same time.
# Each entry must still be missing in that form: once it lands, the test below fails
# until the entry is deleted here, so this list cannot go stale.
PENDING = {
}
# Top-level folders that are not installed code.
NOT_PACKAGES = {"tests", "Evaluation", "benchmarks", "docs", "models", "results"}


def _exists(name, kind):
    return (REPO / f"{name}.py").is_file() if kind == "module" else (REPO / name / "__init__.py").is_file()


def test_listed_modules_and_packages_exist():
    listed = [(m, "module") for m in MODULES] + [(p, "package") for p in PACKAGES]
    missing = [f"{name} ({kind})" for name, kind in listed if PENDING.get(name) != kind and not _exists(name, kind)]
    assert missing == [], f"pyproject.toml lists code that does not exist: {missing}"


def test_pending_entries_are_listed_and_still_missing():
    for name, kind in PENDING.items():
        assert name in (MODULES if kind == "module" else PACKAGES), f"{name} is pending but not in pyproject.toml"
        assert not _exists(name, kind), f"{name} ({kind}) exists now: delete it from PENDING in {Path(__file__).name}"


def test_every_top_level_module_and_package_is_listed():
    modules = {p.stem for p in REPO.glob("*.py")} - {n for n, k in PENDING.items() if k == "package"}
    assert sorted(modules - set(MODULES)) == [], "add these to py-modules in pyproject.toml"
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - NOT_PACKAGES
    subpackages = {
        ".".join(p.parent.relative_to(REPO).parts)
        for name in PACKAGES for p in (REPO / name).glob("*/**/__init__.py")
    }
    assert sorted((packages | subpackages) - set(PACKAGES)) == [], "add these to packages in pyproject.toml"


def test_console_script_and_dependencies():
    assert CONFIG["project"]["scripts"] == {"al": "al_cli:entry"}
    assert "al_cli" in MODULES
    assert CONFIG["project"]["dynamic"] == ["dependencies"]
    files = SETUP["dynamic"]["dependencies"]["file"]
    assert files == ["requirements.txt"]
    lines = [line.split("#")[0].strip() for line in (REPO / files[0]).read_text().splitlines()]
    requirements = {r.name: r for r in map(Requirement, filter(None, lines))}
    # A CPU build of exactly this torch is on the machine; any other version pulls a multi-GB CUDA build.
    assert str(requirements["torch"].specifier) == "==2.13.0"
