"""labelnext: which unlabeled items are worth labeling next, and the loop that labels them.

The public API, loaded on first use so that ``import labelnext`` pulls in neither
TensorFlow nor torch:

- :class:`LabelingProject` (``labelnext.loop.project``): a project folder, its label
  store and the round (the ``al`` command drives it).
- :class:`ActiveLearningAnalyzer` (``labelnext.analysis.analyzer``): uncertainty,
  diversity, novelty and their intersection on a trained model's pool.
- :func:`select` (``labelnext.strategies``): any registered strategy on arrays.
- :func:`load_dataset` (``labelnext.data``): digits, CIFAR-10, image folders, tables, text.
"""
import importlib

_API = {
    "LabelingProject": "labelnext.loop.project",
    "ProjectError": "labelnext.loop.project",
    "ActiveLearningAnalyzer": "labelnext.analysis.analyzer",
    "select": "labelnext.strategies",
    "STRATEGIES": "labelnext.strategies",
    "SelectionContext": "labelnext.strategies",
    "load_dataset": "labelnext.data",
    "Dataset": "labelnext.data",
    "DatasetError": "labelnext.data",
    "seed_everything": "labelnext.utils.seeding",
}
__all__ = sorted(_API)
__version__ = "0.2.0"


def __getattr__(name):  # PEP 562
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'labelnext' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
