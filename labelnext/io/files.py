"""Atomic writers: every file lands complete or not at all (temporary file + rename), every
folder of results lands as a unit (staged folder + swap), under a lock.

Errors from the operating system (read-only folder, full disk, a path that is a file)
come out as ``OSError`` whose ``filename`` is the path the caller asked for, so
``cli.run_cli`` can print one line naming it. Files and folders get the modes the
process' umask allows (``tempfile`` would leave 0600 / 0700).
"""
import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# Prefixes of what a writer leaves behind only when it is killed: staged files and
# folders, and a replaced folder waiting to be removed.
TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"


def proc_status(field):
    """The value of ``field`` in Linux's /proc/self/status (``'0022'`` for Umask, ``'1024'``
    for VmHWM in kB), or None where there is no such file or field."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split()[1]
    except OSError:
        pass
    return None


def _umask():
    # Linux reports the umask in /proc without changing it; os.umask can only read it by
    # setting it, which another thread creating a file in between would see.
    value = proc_status("Umask")
    if value is not None:
        return int(value, 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode():
    """Mode of a new regular file under the current umask (what ``open(..., 'w')`` gives)."""
    return 0o666 & ~_umask()


def folder_mode():
    """Mode of a new folder under the current umask (what ``os.mkdir`` gives)."""
    return 0o777 & ~_umask()


def _named(exc, path):
    """``exc`` with ``filename`` set to ``path`` when the OS did not say which file (a full disk
    reports ENOSPC from ``write``, with no name)."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), os.fspath(path))
    return exc


def check_output_folder(path):
    """Refuse, before any work, a results folder that cannot be written.

    ``path`` may not exist yet; its nearest existing ancestor must then be a writable
    folder. An existing ``path`` must be a writable folder.

    Raises
    ------
    NotADirectoryError, PermissionError
        With ``filename`` the offending path.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(probe))
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "folder is not writable", str(probe))
    return path


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path in the target folder; rename it onto ``path`` on success.

    The file gets the umask's mode; an ``OSError`` names ``path``.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file", path)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=TMP_PREFIX, suffix=suffix or os.path.splitext(path)[1])
        os.close(fd)
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise _named(exc, path) from None
        raise


@contextlib.contextmanager
def folder_lock(path):
    """Hold an exclusive lock on the folder ``path`` (not necessarily existing yet).

    A second writer of the same folder waits until the first is done (``flock`` on
    ``<parent>/.<name>.lock``; the kernel releases it if the holder is killed), so two
    runs never interleave their files in one folder.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)  # releases the lock


class LockHeld(RuntimeError):
    """Another live process (or thread) holds the lock :func:`try_lock` asked for."""


@contextlib.contextmanager
def try_lock(path, *, what):
    """Hold an exclusive lock on the file ``path`` or raise :class:`LockHeld` at once.

    The holder writes ``what`` (e.g. ``'al round --budget 20'``), its pid and start time
    into the file, so a refused caller can say who holds it. The kernel drops the lock
    when the holder exits or is killed, so a crash never leaves a project locked.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 400, 0).decode("utf-8", "replace").strip() or "another process"
            raise LockHeld(holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what} (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def clean_stale(path):
    """Remove what killed writers of folder ``path`` left beside it (``.tmp-<name>-*``,
    ``.old-<name>-*``). Call under :func:`folder_lock`: no live writer of ``path`` then exists."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for prefix in (TMP_PREFIX, OLD_PREFIX):
        for stale in path.parent.glob(f"{prefix}{path.name}-*"):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            removed.append(stale)
    return removed


@contextlib.contextmanager
def staged_folder(path):
    """Yield an empty temporary folder; on success it replaces ``path`` as a unit.

    Readers see the old folder or the new one, never a mix; an error (full disk, bad
    input found late) leaves the old folder as it was. Writers of one folder take turns
    (:func:`folder_lock`), and leftovers of killed writers are removed first.

    Raises
    ------
    NotADirectoryError
        ``path`` exists and is a file (nothing is touched).
    """
    path = Path(path)
    check_output_folder(path)
    with folder_lock(path):
        clean_stale(path)
        try:
            tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}-"))
            os.chmod(tmp, folder_mode())
        except OSError as exc:
            raise _named(exc, path) from None
        try:
            yield tmp
            old = None
            if path.exists():
                old = path.parent / f"{OLD_PREFIX}{path.name}-{os.getpid()}"
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            raise _named(exc, path) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


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
    """Read the arrays ``names`` (in that order) from an ``.npz`` into memory.

    Raises
    ------
    ValueError
        The file is empty, truncated or lacks one of ``names`` (the message names it).
    """
    try:
        with np.load(path) as z:
            return tuple(z[name] for name in names)
    except OSError:
        raise
    except Exception as exc:  # EOFError (empty), BadZipFile / ValueError (truncated), KeyError (missing)
        raise ValueError(f"{os.fspath(path)!r} is damaged ({type(exc).__name__}: {exc})") from None


def cached_arrays(path, names, compute, check=None, log=None):
    """Arrays ``names`` from the ``.npz`` cache ``path``, else ``compute()`` and cache them.

    A damaged cache (empty, truncated, missing an array, or failing ``check(*arrays)``)
    is said in one ``log`` line and recomputed, never a dead end until deleted by hand.

    Returns
    -------
    tuple of ndarray, in the order of ``names``
    """
    if os.path.exists(path):
        try:
            arrays = load_npz(path, names)
            if check is not None:
                check(*arrays)
            if log:
                log(f"loaded from cache {os.fspath(path)}")
            return arrays
        except ValueError as exc:
            if log:
                log(f"cache {os.fspath(path)} is damaged ({str(exc).splitlines()[0][:160]}): recomputing")
    arrays = tuple(compute())
    save_npz(path, **dict(zip(names, arrays)))
    return arrays


def save_png(path, image):
    """Write one uint8 image of shape (h, w, 3) as a PNG atomically (a thumbnail)."""
    with atomic_path(path, ".png") as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="png")


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
