"""scikit-learn estimators: ``NeuralClassifier`` and ``NeuralRegressor``.

Both train with deepfit's own loop (``Trainer`` with ``BestModel`` / ``EarlyStopping``) and
follow scikit-learn's rules: the constructor only stores its arguments, ``fit`` validates and
computes, and everything learned ends in ``_`` (``module_``, ``classes_``, ``history_``, ...).
They work in ``Pipeline``, ``GridSearchCV``, ``cross_val_score``, ``clone``,
``CalibratedClassifierCV`` and ``TunedThresholdClassifierCV``.

Example:
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(hidden=(16,), epochs=5, device="cpu").fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)

Training details:
    * Binary targets use one logit and BCE-with-logits; ``decision_function`` returns that
      logit (n,), ``predict`` is ``logit > 0`` and ``predict_proba`` is (n, 2), so
      ``predict == classes_[predict_proba.argmax(1)]``. Multiclass targets use K logits and
      cross-entropy; ``decision_function`` returns them (n, K).
    * With ``standardize=True`` the inputs are z-scored with ``x_mean_`` / ``x_scale_``, and a
      regression target always with ``y_mean_`` / ``y_scale_`` (predictions are un-scaled),
      both fitted on the rows the network trains on.
    * Early stopping holds out a stratified ``validation_fraction`` of the training rows
      (random for regression) and keeps the weights of the epoch with the lowest validation
      loss (``best_epoch_``). When the data are too small for a split (fewer than 20 rows,
      a class with fewer than 2 rows, or fewer validation / training rows than classes),
      the estimator trains on all rows without early stopping; ``validation_used_`` says
      which happened. Without a split, ``history_`` has no ``val_*`` columns.
    * ``warm_start=True`` continues training ``module_`` (and the optimiser's moments) on the
      next ``fit``, restarting the learning rate at ``lr``; scaling statistics and classes
      stay those of the first fit, and ``n_iter_`` / ``history_`` keep counting.
      ``partial_fit`` runs one epoch on the given rows, without early stopping.
    * ``random_state`` seeds weights, shuffling, dropout and the split inside a forked torch
      RNG, so the global random state is left untouched and equal seeds give equal
      predictions (on CPU; GPU kernels may differ in the last bits).

Checks that do not apply:
    ``sklearn.utils.estimator_checks`` passes except the check below, listed with its reason
    in ``EXPECTED_FAILED_CHECKS`` (for ``check_estimator(..., expected_failed_checks=...)``
    and ``parametrize_with_checks``):

    * ``check_methods_subset_invariance``: it asks that ``decision_function`` /
      ``predict_proba`` of a subset of rows equal those of the whole batch to ``atol=1e-7``.
      The network computes in float32, and the CPU matrix-product kernels accumulate in an
      order that depends on the number of rows, so a logit of about 1 can differ in its last
      bit (~2e-7) between a batch of 1 and a batch of 20. The labels are the same; the check
      passes on some runs and machines, hence a non-strict expected failure.

    The sample-weight checks are skipped by scikit-learn itself: ``fit`` takes no
    ``sample_weight``.
"""

from __future__ import annotations

from deepfit.estimators import NeuralClassifier, NeuralRegressor
from deepfit.estimators.base import MIN_ROWS_FOR_VALIDATION

__all__ = ["EXPECTED_FAILED_CHECKS", "MIN_ROWS_FOR_VALIDATION", "NeuralClassifier",
           "NeuralRegressor"]

#: ``check_estimator`` checks that cannot apply to these estimators, with the reason.
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_methods_subset_invariance": (
        "float32 matrix products accumulate in a row-count dependent order, so outputs on a "
        "subset differ from the full batch in the last bit (~2e-7 > atol=1e-7)"),
}
