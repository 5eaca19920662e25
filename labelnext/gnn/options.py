"""The GNN's options and score names, checked once; no torch import (the strategies
registry checks a ``gnn`` section with them before anything trains)."""
import dataclasses
import re

from labelnext.utils import checks

SCORES = ("hybrid", "margin", "entropy", "disagreement", "mc_dropout")
# Principal components the kNN graph is searched in (gnn.graph.graph_neighbours): at 100k
# nodes x 576-d the full-width search took most of the sidecar's time.
GRAPH_DIM = 64


@dataclasses.dataclass(frozen=True)
class GNNOptions:
    """How the GNN is built, trained and scored; checked once on construction.

    Parameters
    ----------
    k_neighbors : int, default=10
        Neighbours per node in the cosine kNN graph.
    graph_dim : int or None, default=GRAPH_DIM
        The graph's neighbours are searched among this many leading principal
        components of the normalised embeddings; None searches the full width.
    hidden : int, default=64
        Hidden units of the 2-layer GraphSAGE.
    epochs, patience : int, default=200, 20
        Epoch cap and early-stopping patience on validation loss.
    dropout, lr, weight_decay : float, default=0.5, 0.01, 5e-4
        Regularisation and Adam settings.
    alpha : float in [0, 1], default=0.5
        Weight of the distance to the nearest labeled node in ``score='hybrid'``.
    score : {'hybrid', 'margin', 'entropy', 'disagreement', 'mc_dropout'}, default='hybrid'
        ``hybrid`` = (1 - alpha) * GNN entropy + alpha * scaled distance to the
        nearest labeled node; ``margin`` / ``entropy`` of the GNN prediction (both
        scaled to [0, 1]); ``disagreement`` = Jensen-Shannon divergence between the
        GNN and the base model; ``mc_dropout`` = mutual information over
        ``mc_passes`` dropout passes.
    mc_passes : int, default=0
        MC-dropout passes; > 0 adds the mean epistemic uncertainty to the summary.
    val_fraction : float, default=0.2
        Share of each class's labeled nodes held out for early stopping.
    device : str or None, default=None
        None = CUDA when present, else CPU.
    progress : bool, default=True
        Report stages and training progress on stderr.
    """

    k_neighbors: int = 10
    graph_dim: int = GRAPH_DIM
    hidden: int = 64
    epochs: int = 200
    patience: int = 20
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 5e-4
    alpha: float = 0.5
    score: str = "hybrid"
    mc_passes: int = 0
    val_fraction: float = 0.2
    device: str = None
    progress: bool = True

    def __post_init__(self):
        checks.check_int(self.k_neighbors, "k_neighbors", low=1)
        if self.graph_dim is not None:
            checks.check_int(self.graph_dim, "graph_dim", low=1)
        checks.check_int(self.hidden, "hidden", low=1)
        checks.check_int(self.epochs, "epochs", low=1)
        checks.check_int(self.patience, "patience", low=1)
        checks.check_float(self.dropout, "dropout", 0.0, 1.0, high_open=True)
        checks.check_float(self.lr, "lr", 0.0, None, low_open=True)
        checks.check_float(self.alpha, "alpha", 0.0, 1.0)
        checks.check_choice(self.score, "score", SCORES)
        checks.check_int(self.mc_passes, "mc_passes", low=0)
        if self.score == "mc_dropout" and self.mc_passes < 2:
            raise ValueError(f"score='mc_dropout' needs mc_passes >= 2, got {self.mc_passes}")
        if self.mc_passes and self.dropout == 0:
            raise ValueError("mc_passes > 0 needs dropout > 0 (MC dropout samples the dropout masks)")
        checks.check_float(self.val_fraction, "val_fraction", 0.0, 1.0, high_open=True)
        checks.check_float(self.weight_decay, "weight_decay", 0.0, None)
        # The form here; whether CUDA is there is checked when a run resolves the device.
        if self.device is not None and not (isinstance(self.device, str)
                                            and re.fullmatch(r"cpu|cuda(:\d+)?", self.device)):
            raise ValueError(f"device must be None, 'cpu' or 'cuda[:i]', got {self.device!r}")

    def as_dict(self):
        """Option name -> value, e.g. to pass on as keyword arguments."""
        return dataclasses.asdict(self)
