"""Atomic writers: every file lands complete or not at all (temporary file + rename)."""
import contextlib
import json
import os
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path in the target folder; rename it onto ``path`` on success."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix or os.path.splitext(path)[1])
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def save_npy(path, array):
    """Write one array as ``.npy`` atomically."""
    with atomic_path(path, ".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))


def save_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.bool_):
        return bool(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_json(path, obj):
    save_text(path, json.dumps(obj, indent=2, default=_json_default, sort_keys=False) + "\n")


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_npz(path, **arrays):
    """Write named arrays as one uncompressed ``.npz`` atomically."""
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **arrays)


def load_npz(path, names):
    """Read the arrays ``names`` (in that order) from an ``.npz`` into memory."""
    with np.load(path) as z:
        return tuple(z[name] for name in names)


def save_figure(path, fig):
    """Save a matplotlib figure atomically.

    Figures are built as ``matplotlib.figure.Figure`` objects outside pyplot's state
    (see :mod:`plots`), so nothing needs closing and nothing here imports matplotlib.
    """
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def summary_text(title, sections):
    """Render ``{section: {key: value}}`` as an aligned plain-text summary."""
    lines = [title, "=" * len(title)]
    for name, items in sections.items():
        lines.append("")
        lines.append(f"[{name}]")
        width = max((len(str(k)) for k in items), default=0)
        for key, value in items.items():
            if isinstance(value, float):
                value = f"{value:.4g}"
            lines.append(f"  {str(key).ljust(width)} : {value}")
    return "\n".join(lines) + "\n"
