"""The scikit-learn estimators' implementation; import them from ``deepfit.sklearn``."""

from deepfit.estimators.classifier import NeuralClassifier
from deepfit.estimators.regressor import NeuralRegressor

__all__ = ["NeuralClassifier", "NeuralRegressor"]
