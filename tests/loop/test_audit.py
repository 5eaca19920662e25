"""A real pool's loop measures itself: a blind random audit grows the evaluation set round by round,
never trains, and its interval covers the true accuracy in simulations."""
import csv
import json

import numpy as np
from PIL import Image

from labelnext.data import load_dataset
from labelnext.loop.project import LabelingProject

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def _pool(root, labeled=4, unlabeled=90, seed=0):
    """ROOT/<colour>/ with a few labeled squares and ROOT/unlabeled/ with the rest; returns name -> colour."""
    rng = np.random.default_rng(seed)
    truth = {}

    def square(rgb):
        return Image.fromarray(np.clip(np.array(rgb) + rng.normal(0, 60, (16, 16, 3)), 0, 255).astype(np.uint8))

    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(labeled):
            square(rgb).save(root / name / f"{i}.png")
    (root / "unlabeled").mkdir()
    for i in range(unlabeled):
        name = list(COLOURS)[i % 3]
        square(COLOURS[name]).save(root / "unlabeled" / f"u{i:03d}.png")
        truth[f"u{i:03d}.png"] = name
    return truth


def _answer(project, truth, tmp_path, number):
    """The person: fills the exported sheet with the true colour of every item."""
    sheet = tmp_path / f"sheet{number}.csv"
    project.export(sheet)
    paths = project.data.train_paths
    with open(sheet, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(sheet, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "label"])
        w.writerows([[r["index"], truth[paths[int(r["index"])].rsplit("/", 1)[-1]]] for r in rows])
    return project.import_labels(sheet)["added"]


def test_the_audit_grows_round_by_round_and_never_trains(tmp_path):
    truth = _pool(tmp_path / "photos")
    with LabelingProject.create(tmp_path / "proj", tmp_path / "photos", arch="small_cnn", steps=20,
                                image_size=16) as proj:
        assert proj.config["audit"] == 0.1 and proj.config["n_test"] == 0  # every seed label trains
        n_eval, drawn = [], []
        for number in range(3):
            res = proj.run_round(12, "margin")
            folder = proj.path / f"round-{number:03d}"
            audit = np.load(folder / "audit.npy")
            assert res["n_audit"] == len(audit) == 10 and res["selected"] == 12
            selection = [r["index"] for r in proj.selection()]
            assert set(audit) <= set(selection)  # mixed in, unmarked
            trained = set(np.load(folder / "model" / "labeled_indices.npy").tolist())
            assert trained.isdisjoint(np.concatenate([audit, *drawn]))
            drawn.append(audit)
            n_eval.append(None if res["metrics"] is None else res["metrics"]["n_eval"])
            assert _answer(proj, truth, tmp_path, number) == 12
        assert n_eval == [None, 10, 20]
        st = proj.status()
        assert [r["n_eval"] for r in st["rounds"]] == [None, 10, 20]
        low, high = st["rounds"][2]["accuracy_ci"]
        assert low <= st["rounds"][2]["accuracy"] <= high and high - low < st["rounds"][1]["accuracy_ci"][1] - \
            st["rounds"][1]["accuracy_ci"][0]
        assert st["rounds"][2]["evaluation"] == "audit" and st["stopping"]["message"]
        assert st["rounds"][2]["stop_kappa"] is not None
        record = json.loads((proj.path / "round-002" / "round.json").read_text())
        assert record["evaluation"] == "audit" and record["metrics"] == record["audit"]


def test_a_simulation_keeps_its_test_split_and_the_audit_is_optional(tmp_path):
    with LabelingProject.create(tmp_path / "p", "digits", initial=30, steps=20, image_size=8) as proj:
        assert proj.config["audit"] == 0.0
        res = proj.run_round(10, "random")
        assert res["evaluation"] == "test" and res["metrics"]["n_eval"] == proj.config["n_test"] and res["n_audit"] == 0


def test_the_audit_interval_covers_the_test_accuracy_in_90_percent_of_rounds(tmp_path):
    """Simulations on digits with an audit: in at least 90% of rounds over seeds, the audit's 95%
    interval holds the accuracy measured on the whole test split. The learner is logistic regression
    on the pixels given as embeddings (the audit does not depend on the model; a CNN's traced fit
    made this the suite's slowest test)."""
    ds = load_dataset("digits", image_size=8, holdout=False)  # the training items, then the test items
    pixels = np.concatenate([ds.x_train, ds.x_test]).reshape(len(ds.x_train) + len(ds.x_test), -1)
    np.save(tmp_path / "pixels.npy", pixels.astype(np.float32))
    inside = []
    for seed in range(3):
        with LabelingProject.create(tmp_path / f"p{seed}", "digits", initial=20, image_size=8, audit=0.5,
                                    embeddings=tmp_path / "pixels.npy", random_state=seed) as proj:
            assert (proj.config["features"], proj.config["arch"]) == ("embeddings", "logreg")
            for _ in range(5):
                res = proj.run_round(20, "margin")
                if res["audit"] is not None:
                    low, high = res["audit"]["accuracy_ci"]
                    inside.append(low <= res["metrics"]["accuracy"] <= high)
                proj.import_labels(oracle=True)
    assert len(inside) == 12 and sum(inside) / len(inside) >= 0.9, inside
