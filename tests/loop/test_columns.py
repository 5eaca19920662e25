"""A table's leaking columns are named at `al init`, and what --drop-columns leaves out stays out every round."""
from labelnext.cli import main
from labelnext.loop.project import LabelingProject
from labelnext.utils.console import run_cli


def _table(path, n=60):
    rows = ["row_id,x1,x2,label"] + [f"{1000 + i},{(i * 7) % 11},{(i * 5) % 13},{'abc'[i * 3 // n]}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_al_init_names_the_leak_and_the_project_keeps_the_dropped_columns_out(tmp_path, capsys):
    _table(tmp_path / "t.csv")
    # `al init` in-process (main through run_cli, as entry() calls it): a process only paid Python's start.
    code = run_cli(main, ["init", str(tmp_path / "t.csv"), "--project", str(tmp_path / "p"), "--initial", "12",
                          "--steps", "5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "warning: column 'row_id': unique integers in every row (an ID?)" in out
    with LabelingProject.create(tmp_path / "q", tmp_path / "t.csv", initial=12, steps=5,
                                drop_columns="row_id") as proj:
        assert proj.config["dataset"]["drop_columns"] == "row_id"
        assert not [n for n in proj.config["notes"] if n.startswith("warning:")]
    with LabelingProject(tmp_path / "q") as again:  # a later round loads the same columns
        assert again.data.feature_names == ["x1", "x2"]
