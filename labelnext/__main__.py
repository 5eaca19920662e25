"""``python -m labelnext`` is the ``al`` command."""
from labelnext.cli import entry

if __name__ == "__main__":
    entry()
