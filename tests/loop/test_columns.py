"""A table's leaking columns are named at `al init`, and what --drop-columns leaves out stays out every round."""
import subprocess
import sys

from labelnext.loop.project import LabelingProject


def _table(path, n=60):
    rows = ["row_id,x1,x2,label"] + [f"{1000 + i},{(i * 7) % 11},{(i * 5) % 13},{'abc'[i * 3 // n]}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_al_init_names_the_leak_and_the_project_keeps_the_dropped_columns_out(tmp_path):
    _table(tmp_path / "t.csv")
    r = subprocess.run([sys.executable, "-m", "labelnext", "init", "t.csv", "--project", "p", "--initial", "12",
                        "--steps", "5"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "warning: column 'row_id': unique integers in every row (an ID?)" in r.stdout
    with LabelingProject.create(tmp_path / "q", tmp_path / "t.csv", initial=12, steps=5,
                                drop_columns="row_id") as proj:
        assert proj.config["dataset"]["drop_columns"] == "row_id"
        assert not [n for n in proj.config["notes"] if n.startswith("warning:")]
    with LabelingProject(tmp_path / "q") as again:  # a later round loads the same columns
        assert again.data.feature_names == ["x1", "x2"]
