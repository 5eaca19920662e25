"""Optional extras: each feature that needs one says which in one line when its package is
missing, and the core (`al init / round / status`) runs with every optional package blocked.

A package is "missing" here in two ways: in this process ``sys.modules[name] = None`` (``import
name`` raises ModuleNotFoundError); in a fresh interpreter a finder placed first on
``sys.meta_path`` refuses the name (``sys.modules`` stays clean: SciPy reads ``sys.modules['torch']``
and expects a module or nothing).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labelnext import cli, knn
from labelnext import strategies as st
from labelnext.scale import engine, shards
from labelnext.utils.console import run_cli
from labelnext.utils.extras import EXTRAS, MissingExtraError, require

REPO = Path(__file__).resolve().parents[2]
OPTIONAL = ("torch", "torch_geometric", "flask", "waitress", "dask", "distributed", "faiss", "hnswlib", "modAL",
            "pyarrow")


def _block(monkeypatch, *names):
    """Packages (and their submodules other tests already imported) missing in this process."""
    for name in names:
        for loaded in [m for m in sys.modules if m.startswith(f"{name}.")] + [name]:
            monkeypatch.setitem(sys.modules, loaded, None)


def _python(code, *args, blocked=OPTIONAL, cwd=None):
    """Run ``code`` in a fresh interpreter with ``blocked`` packages uninstalled as far as it can tell."""
    prelude = ("import sys\n"
               "class _Blocked:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               f"        if name.partition('.')[0] in {tuple(blocked)!r}:\n"
               "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
               "sys.meta_path.insert(0, _Blocked())\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", prelude + code, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _al(*args, cwd):
    return _python("from labelnext.cli import entry\nsys.argv[0] = 'al'\nentry()", *args, cwd=cwd)


def _one_line(stderr, extra):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert f"needs the '{extra}' extra: pip install 'labelnext[{extra}]'" in lines[0]
    return lines[0]


def _ctx(n=120, d=6, c=3):
    rng = np.random.RandomState(0)
    emb = rng.randn(n, d).astype(np.float32)
    p = rng.dirichlet(np.ones(c), n)
    mask = np.zeros(n, dtype=bool)
    mask[:15] = True
    labels = np.where(mask, np.arange(n) % c, -1)
    return st.SelectionContext(p, emb, mask, labels=labels, params={"gnn": {"epochs": 2}})


def test_require_imports_or_names_the_extra(monkeypatch):
    assert require("json", "scale", "x").dumps([]) == "[]"
    _block(monkeypatch, "flask")
    with pytest.raises(MissingExtraError, match=r"^al label needs the 'label' extra: pip install 'labelnext\[label\]' "
                                                r"\(import of flask halted; None in sys.modules\)$"):
        require("flask", "label", "al label")
    assert issubclass(MissingExtraError, ImportError)  # `except ImportError` fallbacks still work
    with pytest.raises(ValueError, match="extra must be one of"):
        require("json", "nope", "x")


def test_extras_match_pyproject():
    text = (REPO / "pyproject.toml").read_text()
    for extra in EXTRAS:
        assert f"\n{extra} = [" in text


def test_gnn_strategy_names_the_gnn_extra(monkeypatch):
    _block(monkeypatch, "torch", "torch_geometric")
    with pytest.raises(MissingExtraError, match=r"^the GNN \(python -m gnn, strategy 'gnn'\) needs the 'gnn' extra"):
        st.select("gnn", _ctx(), 5, random_state=0)


def test_dask_engine_names_the_scale_extra(monkeypatch, tmp_path):
    _block(monkeypatch, "distributed")
    np.save(tmp_path / "emb.npy", np.zeros((10, 2), dtype=np.float32))
    with pytest.raises(MissingExtraError, match=r"^the Dask engine needs the 'scale' extra"):
        engine.analyze_sharded(None, tmp_path / "emb.npy", tmp_path / "emb.npy", np.arange(10) < 3)


def test_modal_strategies_name_the_modal_extra(monkeypatch):
    _block(monkeypatch, "modAL")
    with pytest.raises(MissingExtraError, match=r"^modAL \(the modal_\* strategies\) needs the 'modal' extra"):
        st.select("modal_entropy", _ctx(), 5, random_state=0)


def test_parquet_shards_name_the_scale_extra(monkeypatch, tmp_path):
    _block(monkeypatch, "pyarrow")
    with pytest.raises(MissingExtraError, match=r"^Parquet shards .* needs the 'scale' extra"):
        shards.write_shards(np.zeros((4, 2), dtype=np.float32), tmp_path / "s", 2, fmt="parquet")


def test_knn_explicit_method_names_the_extra_and_auto_falls_back(monkeypatch):
    _block(monkeypatch, "faiss", "hnswlib")
    x = np.random.RandomState(0).randn(50, 4).astype(np.float32)
    for method in ("hnsw", "faiss", "ivf"):
        with pytest.raises(MissingExtraError, match=rf"^nearest-neighbour method '{method}' needs the 'scale' extra"):
            knn.knn_search(x, x[:10], 3, method=method)
    # Past the exact-search threshold 'auto' would pick hnswlib; without it, the exact search.
    assert knn.knn_method_for(10**6, 10**4, 8) == "exact"
    d_auto, i_auto = knn.knn_search(x, x[:10], 3, method="auto")
    np.testing.assert_array_equal(i_auto, knn.knn_search(x, x[:10], 3, method="exact")[1])


def test_python_m_gnn_without_torch_is_one_line(tmp_path):
    r = _python("from labelnext.gnn.__main__ import main\nsys.exit(main(sys.argv[1:]))",
                "--embeddings-dir", tmp_path, "--out-dir", tmp_path / "out", blocked=("torch", "torch_geometric"))
    assert r.returncode == 2
    assert "(No module named 'torch')" in _one_line(r.stderr, "gnn")


def test_core_runs_without_any_extra_and_al_label_names_its_extra(tmp_path):
    # One fresh interpreter with every optional package blocked (a process per command paid Python's
    # and TensorFlow's start five times): first the imports, then each command through run_cli(main),
    # what `al` (entry()) calls, its stdout and stderr caught apart.
    commands = [["init", "digits", "--project", "P", "--initial", "30", "--steps", "5"],
                ["round", "--project", "P", "--budget", "10"],
                ["status", "--project", "P"],
                ["label", "--project", "P", "--port", "0"]]
    r = _python("import contextlib, importlib, io, json\n"
                "importlib.import_module('labelnext.cli')\n"
                # The optional packages were never needed: importing the core leaves them all unloaded.
                "for m in ('loop.project', 'analysis.analyzer', 'strategies', 'scale.engine', 'scale.inference'):\n"
                "    importlib.import_module('labelnext.' + m)\n"
                "print('imports ok')\n"
                "from labelnext.cli import main\n"
                "from labelnext.utils.console import run_cli\n"
                "sys.argv[0] = 'al'\n"
                "results = []\n"
                "for argv in json.loads(sys.argv[1]):\n"
                "    out, err = io.StringIO(), io.StringIO()\n"
                "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
                "        code = run_cli(main, argv)\n"
                "    results.append([code, out.getvalue(), err.getvalue()])\n"
                "print(json.dumps(results))", json.dumps(commands), blocked=OPTIONAL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "imports ok", r.stdout
    (init, round_, status, label) = json.loads(lines[-1])
    assert init[0] == 0, init[2]
    assert round_[0] == 0, round_[2]
    assert "round 0: trained small_cnn on 30 labels" in round_[1] and "selected 10 of" in round_[1]
    assert status[0] == 0 and "30 labeled" in status[1], status[2]
    assert label[0] == 2
    assert _one_line(label[2], "label").startswith("error: al label needs the 'label' extra")


def test_al_analyze_scheduler_names_the_scale_extra(monkeypatch, tmp_path, capsys):
    _block(monkeypatch, "distributed")
    argv = ["analyze", str(tmp_path), "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o"),
            "--scheduler", "tcp://127.0.0.1:8786"]
    assert run_cli(cli.main, argv) == 2
    assert _one_line(capsys.readouterr().err, "scale").startswith("error: --scheduler needs the 'scale' extra")
