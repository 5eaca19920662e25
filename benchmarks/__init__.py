"""Speed and scale benchmarks over :mod:`labelnext` (not installed): selection at scale
(``scale``), subpools on imbalanced and large pools (``anchoral_imbalanced``,
``anchoral_speed``), the GNN sidecar (``gnn_speed``) and the one synthetic pool generator
(``synthetic``). They run as scripts (``python -m benchmarks.scale``) with labelnext
installed (``make venv`` installs it in editable mode); the label-efficiency benchmark is
:mod:`labelnext.benchmark`.
"""
