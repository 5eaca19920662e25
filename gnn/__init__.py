"""Forwarder so that ``python -m gnn`` works from a checkout; the code is :mod:`labelnext.gnn`."""
