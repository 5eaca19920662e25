"""reports.py from hand-built records: the files, the text and the labeling sheet."""
import csv
import json

import numpy as np
import pytest

from labelnext.io import reports


def record(**extra):
    summary = {
        "analysis": "novelty",
        "dataset": "toy",
        "model_path": None,
        "parameters": {"k_neighbors": 2},
        "counts": {"pool": 4, "labeled": 2, "selected": 2},
        "class_distribution": {"a": 1, "b": 1},
        "class_source": "labels",
        "timings": {"seconds": 0.5, "inference_seconds": None},
    }
    return dict({"summary": summary, "indices": np.array([7, 3]), "scores": np.array([0.9, 0.4])}, **extra)


def test_write_analysis_writes_indices_scores_and_summaries(tmp_path):
    out = reports.write_analysis(tmp_path, record())
    assert out == tmp_path / "novelty"
    idx = np.load(out / "novelty_indices.npy")
    sc = np.load(out / "novelty_scores.npy")
    assert idx.dtype == np.int64 and idx.tolist() == [7, 3]
    assert sc.dtype == np.float32 and sc.tolist() == pytest.approx([0.9, 0.4])
    assert json.loads((out / "summary.json").read_text())["class_distribution"] == {"a": 1, "b": 1}
    text = (out / "summary.txt").read_text()
    assert text.startswith("novelty analysis\n================\n")
    assert "[class distribution (from labels)]\n  a : 1\n  b : 1\n" in text
    # Figures are written only for the parts the record holds.
    assert sorted(p.name for p in out.iterdir()) == ["novelty_indices.npy", "novelty_scores.npy", "summary.json", "summary.txt"]


def test_write_analysis_optional_parts(tmp_path):
    rec = record(
        histogram={"scores": np.array([0.1, 0.4, 0.9, 0.2]), "threshold": 0.4},
        grid={"writer": "image_grid", "items": np.zeros((2, 4, 4, 3), np.uint8), "indices": [7, 3], "predicted": ["a", "b"],
              "scores": [0.9, 0.4]},
        representatives=np.array([3]),
        overlap={"counts": {"u": 2, "n": 2}, "pairwise": {"u&n": 1}, "n_intersection": 1, "title": "overlap"},
    )
    out = reports.write_analysis(tmp_path, rec)
    for name in ("score_histogram.png", "top_images.png", "overlap.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.load(out / "novelty_representatives.npy").tolist() == [3]


def test_write_retrain_summary(tmp_path):
    report = {"added": 3, "added_per_class": {"a": 2, "b": 1}, "accuracy_after": 0.5}
    out = reports.write_retrain(tmp_path, report)
    assert json.loads((out / "summary.json").read_text()) == report
    assert "[added per class]\n  a : 2\n  b : 1\n" in (out / "summary.txt").read_text()


def test_analyzer_report_text():
    text = reports.analyzer_report({
        "dataset": "toy", "n_labeled": 2, "n_pool": 4,
        "analyses": [{"name": "novelty", "n_kept": 2, "params": {"k_neighbors": 2}, "seconds": 0.5}],
        "intersection": {"n_intersection": 1, "n_selected": 3, "n_filled": 2},
        "balance": {"met": False, "counts": [3, 0], "shortfall": [0, 1], "source": "labels", "classes": ["a", "b"]},
        "target_per_class": 1,
        "retrain": {"labeled_before": 2, "added": 1, "steps": 10, "seed": 0, "accuracy_before": 0.5, "accuracy_after": 0.75,
                    "accuracy_random": None, "macro_f1_before": 0.4, "macro_f1_after": 0.7, "macro_f1_random": None,
                    "model_path": "m.keras"},
    })
    assert text.splitlines() == [
        "Active-learning analysis: toy, 2 labeled, pool of 4 items",
        "  novelty      kept       2 (k_neighbors=2; 0.50 s)",
        "  intersection       1 items in all analyses, 3 selected (2 filled by combined rank)",
        "  class balance (target 1 per class, from labels): short in 1 classes",
        "               a:     3",
        "               b:     0  (short 1)",
        "  retrained on 2 + 1 items (10 steps, seed 0): test accuracy 0.500 -> 0.750, random selection of the same size n/a",
        "    macro-F1 0.400 -> 0.700 (random n/a); model: m.keras",
    ]
    assert reports.job_report("summary", "results", 12.4) == "summary\n  results in results/ (12 s)"
    text = reports.job_report("summary", "results", 3, sheet="results/intersection/to_label.csv", dataset="photos")
    assert "label the selection in results/intersection/to_label.csv" in text and "al init photos --project" in text


def test_empty_intersection_says_how_to_fill():
    text = reports.analyzer_report({
        "dataset": "toy", "n_labeled": 2, "n_pool": 4, "analyses": [], "target_per_class": 1, "retrain": None,
        "intersection": {"n_intersection": 0, "n_selected": 0, "n_filled": 0},
        "balance": {"met": False, "counts": [0], "shortfall": [1], "source": "predictions", "classes": ["a"]},
    })
    assert "(empty: pass budget= to fill by combined rank)" in text


def test_labeling_sheet_round_trip(tmp_path):
    path = reports.write_labeling_csv(tmp_path / "sheet" / "to_label.csv", np.array([5, 9]), ["cat", "dog"],
                                      np.array([0.91234, 0.5], np.float32), images=np.zeros((2, 3, 3, 3), np.uint8))
    rows = list(csv.DictReader(open(path)))
    assert [r["index"] for r in rows] == ["5", "9"] and [r["confidence"] for r in rows] == ["0.9123", "0.5000"]
    assert rows[1]["image"] == str(tmp_path / "sheet" / "thumbnails" / "9.png")
    assert (tmp_path / "sheet" / "thumbnails" / "9.png").exists()
    with_paths = reports.write_labeling_csv(tmp_path / "p.csv", [5], ["cat"], [0.5], image_paths=["/img/5.jpg"])
    assert list(csv.DictReader(open(with_paths)))[0]["image"] == "/img/5.jpg"
    rows[0]["label"], rows[1]["label"] = "dog", "0"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=reports.LABELING_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    assert reports.read_labels_csv(path, ["cat", "dog"], [5, 9, 11]) == {5: 1, 9: 0}


@pytest.mark.parametrize("text, match", [
    ("index,label\n12,cat\n", "index 12 is not in the pool"),
    ("index,label\n5,horse\n", "line 2: label 'horse' is not a class"),
    ("index,label\n5,7\n", "label '7' is not a class"),
    ("index,label\nfive,cat\n", "index 'five' is not an integer"),
    ("idx,label\n5,cat\n", "needs the columns 'index' and 'label'"),
])
def test_bad_labels_csv(tmp_path, text, match):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        reports.read_labels_csv(path, ["cat", "dog"], [5, 9])


def test_missing_labels_csv(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        reports.read_labels_csv(tmp_path / "nope.csv", ["cat", "dog"], [1])
