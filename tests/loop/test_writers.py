"""One project, many writers: one round at a time, a missing or damaged store or project.json is one line,
and no command writes over the project's own files."""
import json
import shutil
import sqlite3
import subprocess
import sys
import threading

import pytest

from helpers import photos
from labelnext.cli import _import_notes, main
from labelnext.io.files import try_lock
from labelnext.loop.project import ROUND_LOCK, STORE_FILE, LabelingProject, ProjectError
from labelnext.utils.console import run_cli


def _create(root):
    photos(root / "photos", per_class=10)
    return LabelingProject.create(root / "proj", root / "photos", initial=6, arch="small_cnn", steps=5, image_size=16)


@pytest.fixture
def project(tmp_path):
    proj = _create(tmp_path)
    yield proj
    proj.close()


@pytest.fixture(scope="module")
def round_template(tmp_path_factory):
    """The project after its round 0 (budget 4), trained once for the tests that only read it."""
    root = tmp_path_factory.mktemp("writers")
    with _create(root) as proj:
        proj.run_round(4)
    return root / "proj"


@pytest.fixture
def after_round(round_template, tmp_path):
    """A copy of the template at tmp_path/proj (its data stay in the template's folder)."""
    shutil.copytree(round_template, tmp_path / "proj")
    proj = LabelingProject(tmp_path / "proj")
    yield proj
    proj.close()


def _al(*args, cwd):
    return subprocess.run([sys.executable, "-m", "labelnext", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture
def al(tmp_path, monkeypatch, capsys):
    """`al ARGS` from tmp_path in this process: main through run_cli, as entry() calls it (a process
    per command paid Python's start; the lock test below keeps a real second process)."""
    monkeypatch.chdir(tmp_path)

    def run(*args):
        code = run_cli(main, [str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)
    return run


def _error(r):
    """The one error line of a refused command (progress lines may come before it)."""
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    return errors[0]


def test_a_second_round_is_refused_while_one_runs(project, tmp_path):
    with try_lock(project.path / ROUND_LOCK, what="a round with --budget 20 --strategy auto"):
        r = _al("round", "--project", "proj", "--budget", "4", cwd=tmp_path)
        with pytest.raises(ProjectError, match=r"is busy: a round with --budget 20 --strategy auto \(pid"):
            project.run_round(4)
    assert "is busy" in _error(r)
    assert project.store.list_rounds() == [] and not list(project.path.glob("round-*"))
    project.run_round(4)  # the lock went with its holder
    assert [r["round"] for r in project.rounds()] == [0]


def test_two_rounds_at_once_leave_store_and_folders_agreeing(project, tmp_path):
    results, errors = {}, {}

    def run(budget, strategy):
        try:
            with LabelingProject(project.path) as p:
                results[budget] = p.run_round(budget, strategy)
        except ProjectError as e:
            errors[budget] = str(e)

    threads = [threading.Thread(target=run, args=(b, s)) for b, s in ((5, "auto"), (3, "random"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) + len(errors) == 2 and len(results) >= 1
    assert all("is busy" in e for e in errors.values())
    rounds = project.rounds()
    assert len(rounds) == len(results)
    for stored in rounds:
        record = json.loads((project.path / f"round-{stored['round']:03d}" / "round.json").read_text())
        assert (stored["strategy"], stored["metrics"]["budget"]) == (record["strategy"], record["budget"])
        assert len(project.selection(stored["round"])) == record["budget"]
    for budget, res in results.items():  # every reported selection exists as reported
        assert len(project.selection(res["round"])) == res["selected"] == budget


def test_a_missing_store_is_refused_not_recreated(after_round, tmp_path, al):
    project = after_round
    project.close()
    for f in project.path.glob(f"{STORE_FILE}*"):
        f.unlink()
    r = al("status", "--project", "proj")
    assert "no label store" in _error(r)
    with pytest.raises(ProjectError, match="labels.sqlite is missing"):
        LabelingProject(project.path)
    assert not (project.path / STORE_FILE).exists() and (project.path / "round-000" / "round.json").is_file()


def test_export_never_writes_over_the_projects_own_files(after_round, tmp_path, al):
    project = after_round
    project.status()
    for target in (STORE_FILE, "project.json", "round-000/selection.csv", "learning_curve.png"):
        own = project.path / target
        before = own.read_bytes()
        with pytest.raises(ProjectError, match="would replace the project's own"):
            project.export(own)
        assert own.read_bytes() == before
    r = al("export", "--project", "proj", "--out", f"proj/{STORE_FILE}")
    assert "would replace" in _error(r)
    project.export(project.path / "sheet.csv")  # a new file in the folder is fine


@pytest.mark.parametrize("text, match", [
    ("[1, 2]", "must hold a JSON object, got list"),
    ('{"dataset": {}}', "has no 'class_names'"),
    ("{not json", "is not valid JSON"),
])
def test_a_damaged_project_json_is_one_line_naming_the_file(project, tmp_path, text, match, al):
    project.close()
    (project.path / "project.json").write_text(text, encoding="utf-8")
    r = al("status", "--project", "proj")
    assert "project.json" in _error(r) and match in _error(r)


def test_a_class_id_out_of_range_in_the_store_is_one_line(project, tmp_path, al):
    project.close()
    with sqlite3.connect(project.path / STORE_FILE) as conn:
        conn.execute("UPDATE labels SET class = 99 WHERE rowid = (SELECT MIN(rowid) FROM labels)")
    r = al("status", "--project", "proj")
    assert "labels.sqlite" in _error(r) and "class id 99" in _error(r)


def test_status_refuses_data_that_changed_since_init(project, tmp_path, al):
    project.close()
    victim = next((tmp_path / "photos" / "red").iterdir())
    victim.write_bytes((tmp_path / "photos" / "blue" / "000.png").read_bytes())
    r = al("status", "--project", "proj")
    assert "changed since `al init`" in _error(r)


def test_an_unfilled_sheet_is_refused_in_one_line(after_round, tmp_path, al):
    project = after_round
    project.export(tmp_path / "sheet.csv")
    rows = project.store.n_rows()
    project.close()
    r = al("import", "--project", "proj", "sheet.csv")
    assert "holds no label: fill in the 'label' column" in _error(r)
    with LabelingProject(project.path) as again:
        assert again.store.n_rows() == rows


def test_the_import_summary_names_what_was_skipped_and_only_that():
    res = {"added": 4, "source": "labelstudio", "tasks": 7, "labeled": 4, "unannotated": 1, "cancelled": 1,
           "empty": 0, "several": 1, "disagreeing": 1, "duplicate_tasks": 0}
    assert _import_notes(res) == " (skipped: cancelled 1, unannotated 1; latest annotation taken: several 1, disagreeing 1)"
    assert _import_notes({"added": 3, "source": "csv"}) == ""
