"""``python -m gnn`` from a checkout: the GraphSAGE sidecar, :mod:`labelnext.gnn`."""
import sys

from labelnext.gnn.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
