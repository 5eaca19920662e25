"""Shared command-line plumbing: bad input is one line on stderr and exit code 2."""
import sys


def run_cli(main, argv=None):
    """Call ``main(argv)``; turn user errors into one line and exit code 2."""
    try:
        code = main(argv)
    except (ValueError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else code


def progress(message, enabled=True):
    """One progress line on stderr (stdout stays for reports)."""
    if enabled:
        print(message, file=sys.stderr, flush=True)
