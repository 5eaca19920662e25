"""What differs between the data kinds (images, table rows, texts), asked in one place.

Every place whose behaviour depends on what the items are asks the item's :class:`Kind`
(``ds.kind_info``, or :func:`get` where only the name is at hand) instead of branching on
``ds.kind``: how a sheet and the labeling page preview an item, how a report shows the top
items, which base models and selection spaces fit, which feature extractors apply, how the
data is read back, whether preprocessing is fitted on the pool.

A new kind is one :class:`Kind` passed to :func:`register`; a missing or ill-typed answer is
refused when the record is built, naming each question. Models, selection spaces, feature extractors and report
writers are named by string: this module sits below training, strategies, features and the
reports, which resolve the names (``tests/data/test_kinds.py`` checks that they do).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

from labelnext.io.files import save_png

# A sheet cell holds a short preview; the full item is one index away.
SNIPPET_CHARS = 200
# A text item longer than this is cut on the page (a person cannot read more per item anyway).
TEXT_MAX_CHARS = 20_000

_MISSING = object()


class KindError(ValueError):
    """A data kind is unknown, or a new one leaves a question unanswered."""


def _question(meaning):
    # Every answer is required; the default only lets __post_init__ name all missing ones at once.
    return field(default=_MISSING, metadata={"meaning": meaning})


@dataclass(frozen=True, kw_only=True)
class Kind:
    """The answers one data kind gives; every field is required.

    Attributes
    ----------
    name : str
        ``Dataset.kind`` of such data, e.g. ``'image'``.
    noun : str
        How messages name the items (``"features 'patches' needs images"``).
    load_as : str
        The ``kind=`` :func:`labelnext.data.load_dataset` is given to read the data again
        (``'auto'`` where the layout alone tells the kind).
    models : tuple of str
        Base models (``training.backbones`` names) that read the raw items; the first is
        what ``train.py`` trains by default.
    default_model : str
        What ``al init`` and the benchmark train each round; one of ``models``.
    spaces : tuple of str
        Selection spaces (``strategies.space``) the items allow; the first is the default.
    features : tuple of str
        Feature extractors (``features.patches.FEATURES``) the items allow; the first is the default.
    fit_on_pool : bool
        The model's preprocessing is fitted on every pool item (a text vocabulary needs no
        labels), not on the labeled rows only.
    images : bool
        The items are pictures: the page loads ``image/<index>``, sheets get thumbnails and
        ``image_size`` applies.
    top_items : str
        Name of the writer in ``io.reports.TOP_ITEM_WRITERS`` that shows an analysis' top items.
    sheet_preview : callable ``(ds, index, out_dir) -> str``
        The ``image`` cell of a labeling sheet for item ``index``: a file path, a snippet or a row.
    page_preview : callable ``(ds, index) -> dict``
        The JSON the labeling page gets for item ``index`` (``{'kind': name, ...}``).
    """

    name: str = _question("Dataset.kind of such data (str)")
    noun: str = _question("how messages name the items, e.g. 'images' (str)")
    load_as: str = _question("the kind= load_dataset is given to read the data again (str)")
    models: tuple = _question("base model names that read the raw items, the train.py default first (tuple of str)")
    default_model: str = _question("the model each round trains, one of models (str)")
    spaces: tuple = _question("selection spaces the items allow, the default first (tuple of str)")
    features: tuple = _question("feature extractors the items allow, the default first (tuple of str)")
    fit_on_pool: bool = _question("whether preprocessing is fitted on the whole pool (bool)")
    images: bool = _question("whether the items are pictures (bool)")
    top_items: str = _question("name of the io.reports writer of the top items (str)")
    sheet_preview: Callable = _question("callable (ds, index, out_dir) -> str: a sheet's preview of one item")
    page_preview: Callable = _question("callable (ds, index) -> dict: the labeling page's preview of one item")

    def __post_init__(self):
        who = f"kind {self.name!r}" if isinstance(self.name, str) else "a new kind"
        missing = [f"{f.name} ({f.metadata['meaning']})" for f in fields(self) if getattr(self, f.name) is _MISSING]
        if missing:
            raise KindError(f"{who} does not answer: " + "; ".join(missing))
        for name in ("name", "noun", "load_as", "default_model", "top_items"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise KindError(f"{who}: {name} must be a non-empty str, got {getattr(self, name)!r}")
        for name in ("models", "spaces", "features"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not value or not all(isinstance(v, str) and v for v in value):
                raise KindError(f"{who}: {name} must be a non-empty tuple of str, got {value!r}")
        for name in ("fit_on_pool", "images"):
            if not isinstance(getattr(self, name), bool):
                raise KindError(f"{who}: {name} must be a bool, got {getattr(self, name)!r}")
        for name in ("sheet_preview", "page_preview"):
            if not callable(getattr(self, name)):
                raise KindError(f"{who}: {name} must be callable, got {getattr(self, name)!r}")
        if self.default_model not in self.models:
            raise KindError(f"{who}: default_model {self.default_model!r} must be one of models {list(self.models)}")


# --------------------------------------------------------------------------- previews

def _image_sheet(ds, index, out_dir):
    """The source file where the data set has files, else a PNG thumbnail written once into ``out_dir``."""
    if ds.train_paths is not None:
        return ds.train_paths[index]
    thumb = Path(out_dir) / f"{index}.png"
    if not thumb.exists():
        save_png(thumb, ds.x_train[index])
    return str(thumb)


def _image_page(ds, index):
    return {"kind": "image", "url": f"image/{index}"}


def _row_sheet(ds, index, out_dir):
    return "; ".join(f"{n}={v:g}" for n, v in zip(ds.column_names, ds.x_train[index]))[:SNIPPET_CHARS]


def _row_page(ds, index):
    return {"kind": "tabular", "rows": [[n, float(v)] for n, v in zip(ds.column_names, ds.x_train[index])]}


def _text_sheet(ds, index, out_dir):
    return " ".join(str(ds.x_train[index]).split())[:SNIPPET_CHARS]


def _text_page(ds, index):
    text = str(ds.x_train[index])
    return {"kind": "text", "text": text[:TEXT_MAX_CHARS], "cut": len(text) > TEXT_MAX_CHARS}


def _listed_sheet(ds, index, out_dir):
    """A listed item's identity: its file (absolute) or the table's id cell."""
    return ds.train_paths[index] if ds.train_paths is not None else str(ds.x_train[index])


def _listed_page(ds, index):
    return {"kind": "listed", "text": _listed_sheet(ds, index, None), "cut": False}


# --------------------------------------------------------------------------- the registry

KINDS = {}


def register(kind):
    """Add ``kind`` (a :class:`Kind`, already checked when built) under ``kind.name``; returns it."""
    if not isinstance(kind, Kind):
        raise KindError(f"register takes a Kind, got {type(kind).__name__}")
    if kind.name in KINDS:
        raise KindError(f"kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def unregister(name):
    """Remove the kind ``name`` (a test's made-up kind); returns it."""
    return KINDS.pop(get(name).name)


def names():
    """The registered kind names, in registration order."""
    return tuple(KINDS)


def get(name):
    """The :class:`Kind` called ``name``; :class:`KindError` naming the known kinds otherwise."""
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise KindError(f"kind must be one of {list(KINDS)}, got {name!r}")
    return kind


def check_allowed(question, value, kind, param):
    """``value`` if the kind ``kind`` allows it as an answer to ``question`` (``'spaces'`` or
    ``'features'``), else ValueError naming the kinds that do and the kind's default."""
    answers = getattr(get(kind), question)
    if value in answers:
        return value
    owners = [k.noun for k in KINDS.values() if value in getattr(k, question)]
    needs = f"needs {' or '.join(owners)}" if owners else "fits no data kind"
    raise ValueError(f"{param} {value!r} {needs}, got {kind} data; use {answers[0]!r}")


# mobilenetv3 is what train.py trains on images. A round trains the small CNN: from scratch on
# tens to hundreds of labels the ~60k-parameter CNN is about 4x faster per step than
# MobileNetV3Small and more accurate (CIFAR-10 at 1k labels: 0.41 against 0.23).
# Only text fits its preprocessing (the vocabulary) on the unlabeled pool.
IMAGE = register(Kind(
    name="image", noun="images", load_as="auto", models=("mobilenetv3", "small_cnn"), default_model="small_cnn",
    spaces=("model",), features=("raw", "patches", "pretrained", "embeddings"), fit_on_pool=False, images=True, top_items="image_grid",
    sheet_preview=_image_sheet, page_preview=_image_page))
TABULAR = register(Kind(
    name="tabular", noun="tables", load_as="tabular", models=("mlp", "linear", "logreg"), default_model="mlp",
    spaces=("model",), features=("raw", "embeddings"), fit_on_pool=False, images=False, top_items="row_table",
    sheet_preview=_row_sheet, page_preview=_row_page))
TEXT = register(Kind(
    name="text", noun="text", load_as="text", models=("textmlp", "lstm"), default_model="textmlp",
    spaces=("model", "lsa"), features=("raw", "embeddings"), fit_on_pool=True, images=False, top_items="text_snippets",
    sheet_preview=_text_sheet, page_preview=_text_page))
# Items listed by identity only (data/listing.py), their features a folder of embedding shards:
# the page and the sheets show each item's file or id, not its content.
LISTED = register(Kind(
    name="listed", noun="listed items", load_as="listed", models=("logreg", "linear", "mlp"), default_model="logreg",
    spaces=("model",), features=("embeddings",), fit_on_pool=False, images=False, top_items="text_snippets",
    sheet_preview=_listed_sheet, page_preview=_listed_page))
