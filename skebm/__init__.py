"""skebm: energy-based models as scikit-learn estimators, trained with PyTorch."""

from ._base import DivergenceError
from ._contrastive_divergence import CHAPTER7_PARAMS, ContrastiveDivergenceEBM
from ._nce import NCEEBM
from ._rbm import RBM

__version__ = "0.1.0"

__all__ = ["CHAPTER7_PARAMS", "NCEEBM", "RBM", "ContrastiveDivergenceEBM", "DivergenceError", "__version__"]
