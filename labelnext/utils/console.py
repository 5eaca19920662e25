"""Shared command-line plumbing: bad input, errors from the operating system and a missing
optional extra are one line on stderr and exit code 2.

Library code raises ``ValueError`` naming its Python parameter (``random_state must
be ...``); a script passes ``flags`` (parameter -> flag) so the line names the flag the
user typed (``--seed must be ...``).
"""
import argparse
import re
import sys

from labelnext.utils.extras import MissingExtraError


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are the short usage line and the error,
    not the full usage of every flag (``--help`` still lists them all)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"usage: {self.prog} [options] (see --help)\n{self.prog}: error: {message}\n")


def flag_message(message, flags=None):
    """``message`` with each Python parameter of ``flags`` replaced by its flag.

    A parameter is replaced where a message names it: at the start of a phrase and
    followed by ``=``, a quoted value, ``must``, ``is``, ``has`` or ``of`` (``name='/x' does not exist``
    -> ``--dataset '/x' does not exist``).
    """
    for param, flag in (flags or {}).items():
        message = re.sub(rf"(?<![\w.'\"/-]){re.escape(param)}=", f"{flag} ", message)
        message = re.sub(rf"(?<![\w.'\"/-]){re.escape(param)}(?= (must|is|has|of|holds)\b| ')", flag, message)
    return message


def os_error_message(exc):
    """One line for an ``OSError``: the path, then the cause (``results/x: Read-only file system``)."""
    if exc.filename is not None and exc.strerror:
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        return f"{where}: {exc.strerror}"
    return str(exc)


def run_cli(main, argv=None, flags=None):
    """Call ``main(argv)``; turn user errors and OS errors into one line and exit code 2.

    Parameters
    ----------
    main : callable(argv) -> int or None
    argv : list of str, optional
    flags : dict of str -> str, optional
        Python parameter names -> the flags that set them (see :func:`flag_message`).
    """
    try:
        code = main(argv)
    except ValueError as exc:
        print(f"error: {flag_message(str(exc), flags)}", file=sys.stderr)
        return 2
    except MissingExtraError as exc:  # an optional package is missing: the message names the extra
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # read-only or full disk, a path that is a file, a missing file
        message = os_error_message(exc)
        print(f"error: {flag_message(message, flags) if exc.strerror is None else message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else code


def progress(message, enabled=True):
    """One progress line on stderr (stdout stays for reports)."""
    if enabled:
        print(message, file=sys.stderr, flush=True)


def rate_line(what, done, total, unit, rate):
    """The one line of progress on long work: ``WHAT: done/total UNIT (pct%), rate UNIT/s, h:mm:ss left``."""
    left = round((total - done) / max(rate, 1e-9))
    return (f"{what}: {done:,}/{total:,} {unit} ({100 * done / max(total, 1):.0f}%), {rate:,.0f} {unit}/s, "
            f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d} left")


def fmt_metric(value):
    """A metric for a report line: three decimals, or ``n/a`` when it could not be measured."""
    return "n/a" if value is None else f"{value:.3f}"
