"""The labeling page (``al label``): a local web server on a project's label store.

:mod:`labeling.session` holds what the page does (queue, labels, undo, marks, the next
round in the background); :mod:`labeling.server` serves it over HTTP with waitress.
"""
