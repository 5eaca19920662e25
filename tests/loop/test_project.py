"""The loop: a project folder, its label store and rounds, from the `al` command and from Python."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

from helpers import photos
from labelnext.cli import main
from labelnext.loop.project import LabelingProject, ProjectError
from labelnext.utils.console import run_cli


def _al(*args, cwd):
    return subprocess.run([sys.executable, "-m", "labelnext", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def _fill_sheet(path):
    """A person's answers: the class folder each image lies in."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["label"] = Path(r["image"]).parent.name
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def test_two_rounds_from_the_command_line(tmp_path, monkeypatch, capsys):
    # In-process (`al`'s main through run_cli, as entry() calls it): a process per command paid
    # TensorFlow's import six times; test_bad_commands_are_one_line runs `al` as a process.
    monkeypatch.chdir(tmp_path)

    def al(*args):
        code = run_cli(main, [str(a) for a in args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    photos(tmp_path / "photos")
    out = al("init", "photos", "--project", "proj", "--initial", "12", "--arch", "small_cnn", "--steps", "30",
             "--image-size", "16")
    assert "12 seed labels" in out and "18 held out for testing" in out
    out = al("round", "--project", "proj", "--budget", "6")
    assert "round 0: trained small_cnn on 12 labels" in out and "test accuracy" in out
    al("export", "--project", "proj", "--out", "sheet.csv")
    assert _fill_sheet(tmp_path / "sheet.csv") == 6
    assert "added 6 labels from csv" in al("import", "--project", "proj", "sheet.csv")
    # bald draws MC-dropout passes from the round's model (its head and Dropout rate).
    out = al("round", "--project", "proj", "--budget", "6", "--strategy", "bald")
    assert "(12 -> 18 labels)" in out and "test accuracy" in out and "(bald selection next)" in out
    status = json.loads(al("status", "--project", "proj", "--json"))
    assert [(x["round"], x["n_labeled"]) for x in status["rounds"]] == [(0, 12), (1, 18)]
    assert all(0.0 <= x["accuracy"] <= 1.0 for x in status["rounds"])
    assert (tmp_path / "proj" / "learning_curve.png").stat().st_size > 0
    # The second round's selection never repeats a labeled item.
    with LabelingProject(tmp_path / "proj") as proj:
        labeled = set(np.flatnonzero(proj.store.labeled_mask()).tolist())
        assert labeled.isdisjoint(r["index"] for r in proj.selection())


def test_bad_commands_are_one_line(tmp_path):
    r = _al("round", "--project", "nowhere", "--budget", "5", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--project 'nowhere' is not a project folder" in r.stderr
    photos(tmp_path / "p", per_class=8)
    r = _al("init", "p", "--project", "proj", cwd=tmp_path)  # every item labeled, no --initial
    assert r.returncode == 2 and "pass --initial N to simulate" in r.stderr
    assert not (tmp_path / "proj").exists()


@pytest.fixture
def project(tmp_path):
    photos(tmp_path / "photos", per_class=10)
    return LabelingProject.create(tmp_path / "proj", tmp_path / "photos", initial=6, arch="small_cnn", steps=5,
                                  image_size=16)


def _sheet(path, rows, header=("index", "label"), encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_import_keeps_history_and_survives_a_restart(project, tmp_path):
    item = int(np.flatnonzero(~project.store.labeled_mask())[0])
    project.import_labels(_sheet(tmp_path / "a.csv", [[item, "red"]]))
    project.import_labels(_sheet(tmp_path / "b.csv", [[item, "blue"]]))
    path = project.path
    project.close()
    with LabelingProject(path) as again:  # a new process would see the same
        history = again.store.history(item)
        assert [(h["class_name"], h["source"]) for h in history] == [("red", "csv"), ("blue", "csv")]
        assert again.store.label_array()[item] == again.class_names.index("blue")


@pytest.mark.parametrize("rows, header, encoding, message", [
    ([[10_000, "red"]], ("index", "label"), "utf-8", "10000"),
    ([[0, "purple"]], ("index", "label"), "utf-8", "purple"),
    ([[1, "red"], [1, "blue"]], ("index", "label"), "utf-8", "1"),
    ([[1, "red"]], ("index", "klass"), "utf-8", "label"),
    ([[1, "r\xe9d"]], ("index", "label"), "latin-1", "UTF-8"),
])
def test_bad_sheets_change_nothing(project, tmp_path, rows, header, encoding, message):
    before = project.store.n_rows()
    sheet = _sheet(tmp_path / "bad.csv", rows, header, encoding)
    with pytest.raises(ValueError, match=message):
        project.import_labels(sheet)
    assert project.store.n_rows() == before


def test_oracle_only_in_simulations_and_round_checks(project):
    with pytest.raises(ProjectError, match="no round has run yet"):
        project.import_labels(oracle=True)
    with pytest.raises(ValueError, match="--budget must be an integer between 1 and"):
        project.run_round(10_000)
    with pytest.raises(ValueError, match="strategy must be one of"):
        project.run_round(3, "nonsense")
    assert project.rounds() == []  # nothing was started by a refused round


def test_kill_during_import_leaves_all_or_nothing(tmp_path):
    photos(tmp_path / "photos", per_class=400)
    proj = LabelingProject.create(tmp_path / "proj", tmp_path / "photos", initial=6, arch="small_cnn", image_size=16)
    before = proj.store.label_array()
    pool = np.flatnonzero(before < 0)
    proj.close()
    _sheet(tmp_path / "big.csv", [[i, "green"] for i in pool])
    child = subprocess.Popen([sys.executable, "-m", "labelnext", "import", "--project", "proj", "big.csv"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with LabelingProject(tmp_path / "proj") as again:
        after = again.store.label_array()
    changed = after[pool] >= 0
    assert changed.all() or not changed.any()
    np.testing.assert_array_equal(after[before >= 0], before[before >= 0])


def test_a_named_data_set_loads_again_after_a_restart(tmp_path):
    LabelingProject.create(tmp_path / "d", "digits", initial=20, arch="small_cnn", image_size=8).close()
    with LabelingProject(tmp_path / "d") as proj:  # the next process loads 'digits' by name
        assert proj.config["dataset"]["source"] == "digits" and proj.data.name == "digits"
