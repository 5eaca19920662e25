"""Data kinds: every kind answers every question, the answers name things that exist, and a new
kind is one record (a made-up 'audio' kind shows what it has to provide)."""
import json
import re
from argparse import Namespace
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from labelnext.benchmark import simulate
from labelnext.data import Dataset, kinds
from labelnext.features.patches import FEATURES, features_model
from labelnext.io import reports
from labelnext.strategies.space import SELECTION_SPACES, check_space
from labelnext.training.backbones import ARCHS, ARCHS_BY_KIND, default_arch

PACKAGE = Path(__file__).resolve().parents[2] / "labelnext"
QUESTIONS = [f.name for f in fields(kinds.Kind)]


def _dataset(kind, x, **extra):
    return Dataset(name="toy", x_train=x, y_train=np.zeros(len(x), np.int64), x_test=None, y_test=None,
                   class_names=["a", "b"], train_paths=None, source="toy", kind=kind, **extra)


def _pool(kind):
    """Two items of ``kind``: what a preview reads."""
    if kind == "image":
        return _dataset(kind, np.full((2, 4, 4, 3), 7, np.uint8))
    if kind == "tabular":
        return _dataset(kind, np.array([[1.0, 2.5], [3.0, -0.125]], np.float32), feature_names=["h", "w"])
    return _dataset(kind, np.array(["a  short\ntext", "x" * 30_000], dtype=object))


def _audio_sheet(ds, index, out_dir):
    wave = ds.x_train[index]
    return f"{len(wave) / 8000:.2f} s, peak {np.abs(wave).max():.2f}"


def _audio_page(ds, index):
    return {"kind": "audio", "samples": [round(float(v), 3) for v in ds.x_train[index][:4]]}


# Every answer a new kind has to give: no default stands in for a missing one.
AUDIO = dict(name="audio", noun="sounds", load_as="audio", models=("mlp",), default_model="mlp",
             spaces=("model",), features=("raw",), fit_on_pool=False, images=False, top_items="row_table",
             sheet_preview=_audio_sheet, page_preview=_audio_page)


@pytest.fixture
def audio():
    kind = kinds.register(kinds.Kind(**AUDIO))
    yield kind
    kinds.unregister("audio")


@pytest.mark.parametrize("name", kinds.names())
def test_every_kind_answers_every_question_with_names_that_exist(name, tmp_path):
    kind = kinds.get(name)
    assert kind.name == name and all(getattr(kind, q) is not None for q in QUESTIONS)
    assert set(kind.models) <= set(ARCHS) and kind.default_model in kind.models
    assert ARCHS_BY_KIND[name] == kind.models and default_arch(name) == kind.models[0]
    assert set(kind.spaces) <= set(SELECTION_SPACES) and kind.spaces[0] == "model"
    # Listed items have no content to train on: their features are the user's embeddings.
    assert set(kind.features) <= set(FEATURES) and kind.features[0] == ("embeddings" if name == "listed" else "raw")
    assert kind.top_items in reports.TOP_ITEM_WRITERS
    assert kind.load_as in ("auto", name)
    ds = _pool(name)
    assert ds.kind_info is kind
    assert isinstance(kind.sheet_preview(ds, 0, tmp_path), str)
    page = kind.page_preview(ds, 0)
    assert page["kind"] == name and json.loads(json.dumps(page)) == page


def test_built_in_previews_say_what_a_person_sees(tmp_path):
    image, table, text = _pool("image"), _pool("tabular"), _pool("text")
    assert kinds.IMAGE.sheet_preview(image, 1, tmp_path) == str(tmp_path / "1.png")
    assert (tmp_path / "1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image.train_paths = ["/photos/a.jpg", "/photos/b.jpg"]
    assert kinds.IMAGE.sheet_preview(image, 1, tmp_path / "unused") == "/photos/b.jpg"
    assert kinds.IMAGE.page_preview(image, 1) == {"kind": "image", "url": "image/1"}
    assert kinds.TABULAR.sheet_preview(table, 1, tmp_path) == "h=3; w=-0.125"
    assert kinds.TABULAR.page_preview(table, 0) == {"kind": "tabular", "rows": [["h", 1.0], ["w", 2.5]]}
    assert kinds.TEXT.sheet_preview(text, 0, tmp_path) == "a short text"
    assert kinds.TEXT.sheet_preview(text, 1, tmp_path) == "x" * kinds.SNIPPET_CHARS
    assert kinds.TEXT.page_preview(text, 0) == {"kind": "text", "text": "a  short\ntext", "cut": False}
    long = kinds.TEXT.page_preview(text, 1)
    assert long["cut"] is True and len(long["text"]) == kinds.TEXT_MAX_CHARS


def test_only_text_allows_lsa_and_only_images_allow_patches():
    assert [n for n in kinds.names() if "lsa" in kinds.get(n).spaces] == ["text"]
    assert [n for n in kinds.names() if "patches" in kinds.get(n).features] == ["image"]
    assert [n for n in kinds.names() if kinds.get(n).images] == ["image"]
    assert [n for n in kinds.names() if kinds.get(n).fit_on_pool] == ["text"]


def test_a_new_kind_is_one_record_every_place_asks(audio, tmp_path):
    waves = np.array([[0.0, 0.5, -0.75, 0.25] * 2000, [0.1] * 8000], np.float32)
    ds = _dataset("audio", waves)
    assert ds.kind_info is audio and kinds.names()[-1] == "audio"
    assert ds.kind_info.sheet_preview(ds, 0, tmp_path) == "1.00 s, peak 0.75"
    assert ds.kind_info.page_preview(ds, 0) == {"kind": "audio", "samples": [0.0, 0.5, -0.75, 0.25]}
    assert default_arch("audio") == "mlp"
    assert simulate._resolve_model(Namespace(features="raw", model=None), "audio") == "mlp"
    assert check_space("model", "audio") is None and features_model("raw", "audio") is None
    grid = {"writer": kinds.get("audio").top_items, "items": waves[:, :3], "indices": [4, 9], "predicted": ["a", "b"], "scores": [0.9, 0.4]}
    assert reports.write_top_items(tmp_path, grid, "t") == "top_rows.csv"


def test_a_new_kind_is_refused_what_it_does_not_allow(audio):
    with pytest.raises(ValueError, match="selection_space 'lsa' needs text, got audio data; use 'model'"):
        check_space("lsa", "audio")
    with pytest.raises(ValueError, match="features 'patches' needs images, got audio data; use 'raw'"):
        features_model("patches", "audio")
    with pytest.raises(ValueError, match=re.escape("model must be one of ['mlp'] for audio data, got 'lstm'")):
        simulate._resolve_model(Namespace(features="raw", model="lstm"), "audio")


def test_a_missing_answer_is_named_not_a_key_error():
    partial = {k: AUDIO[k] for k in ("name", "noun", "models", "default_model")}
    with pytest.raises(kinds.KindError, match=r"kind 'audio' does not answer: load_as \(.*\); spaces .*; "
                                              r"page_preview \(callable \(ds, index\) -> dict"):
        kinds.Kind(**partial)


@pytest.mark.parametrize("question, answer, message", [
    ("models", ["mlp"], "models must be a non-empty tuple of str, got \\['mlp'\\]"),
    ("spaces", (), "spaces must be a non-empty tuple of str"),
    ("default_model", "lstm", "default_model 'lstm' must be one of models \\['mlp'\\]"),
    ("images", 1, "images must be a bool, got 1"),
    ("page_preview", "audio.html", "page_preview must be callable"),
    ("top_items", "", "top_items must be a non-empty str"),
])
def test_an_ill_typed_answer_is_refused_when_the_kind_is_built(question, answer, message):
    bad = dict(AUDIO, **{question: answer})
    with pytest.raises(kinds.KindError, match=f"kind 'audio': {message}"):
        kinds.Kind(**bad)


def test_an_unknown_kind_is_a_one_line_error_naming_the_known_ones():
    ds = _dataset("audio", np.zeros((2, 3), np.float32))
    with pytest.raises(kinds.KindError, match=re.escape("kind must be one of ['image', 'tabular', 'text', 'listed'], got 'audio'")):
        ds.kind_info  # noqa: B018
    with pytest.raises(ValueError, match="kind must be one of"):
        default_arch("audio")
    second_image = kinds.Kind(**dict(AUDIO, name="image"))
    with pytest.raises(kinds.KindError, match="kind 'image' is already registered"):
        kinds.register(second_image)
    with pytest.raises(kinds.KindError, match="register takes a Kind, got dict"):
        kinds.register(AUDIO)


def test_a_top_items_writer_that_reports_lacks_is_named(tmp_path):
    kinds.register(kinds.Kind(**dict(AUDIO, top_items="waveforms")))
    try:
        with pytest.raises(ValueError, match="top_items must be one of \\['image_grid', 'row_table', "
                                             "'text_snippets'\\], got 'waveforms'"):
            reports.write_top_items(tmp_path, {"writer": kinds.get("audio").top_items}, "t")
    finally:
        kinds.unregister("audio")


def test_no_module_outside_the_loaders_branches_on_a_data_kind():
    branch = re.compile(r"kind\s*(==|!=)\s*[\"'](image|tabular|text)[\"']|kind (not )?in \(\s*[\"'](image|tabular|text)")
    found = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if p.parent.name != "data"
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if branch.search(line)]
    assert found == []
