"""Fitting a trained model to new observations (meshes, scans, partial scans, landmarks).

Optimising the latent code and a similarity transform through the frozen decoder.
"""

from deep3dmm.fitting.api import fit_file, fit_split
from deep3dmm.fitting.fitter import FitOptions, FitResult, fit
from deep3dmm.fitting.model import FitModel
from deep3dmm.fitting.prior import LatentPrior, training_prior

__all__ = [
    "FitModel",
    "FitOptions",
    "FitResult",
    "LatentPrior",
    "fit",
    "fit_file",
    "fit_split",
    "training_prior",
]
