"""lion-sweep: a reproducible study of the Lion optimizer's hyperparameters."""

__version__ = "0.1.0"
