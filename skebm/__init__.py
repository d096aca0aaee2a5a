"""skebm: energy-based models as scikit-learn estimators, trained with PyTorch."""

from ._adversarial import AdversarialEBM
from ._base import DivergenceError
from ._boltzmann import BoltzmannMachine
from ._contrastive_divergence import CHAPTER7_PARAMS, SHORT_RUN_PARAMS, ContrastiveDivergenceEBM
from ._dbn import DBN
from ._latent import EllipseDecoder, LatentEnergy, LatentVariableEBM
from ._nce import NCEEBM
from ._rbm import RBM
from ._score_matching import MULTILEVEL_PARAMS, ScoreMatchingEBM
from .persistence import load, save

__version__ = "0.1.0"

__all__ = [
    "CHAPTER7_PARAMS",
    "DBN",
    "MULTILEVEL_PARAMS",
    "NCEEBM",
    "RBM",
    "SHORT_RUN_PARAMS",
    "AdversarialEBM",
    "BoltzmannMachine",
    "ContrastiveDivergenceEBM",
    "DivergenceError",
    "EllipseDecoder",
    "LatentEnergy",
    "LatentVariableEBM",
    "ScoreMatchingEBM",
    "__version__",
    "load",
    "save",
]
