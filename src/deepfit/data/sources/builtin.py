"""Datasets that ship with scikit-learn: usable offline, no download."""

from __future__ import annotations

from deepfit.data.table import Table

# name -> (loader name, task, positive class, one-line description)
BUILTIN = {
    "breast_cancer": ("load_breast_cancer", "binary", "malignant",
                      "Wisconsin diagnostic breast cancer: 569 tumours, 30 features"),
    "digits": ("load_digits", "multiclass", None, "8x8 handwritten digits: 1,797 images, 64 pixels"),
    "iris": ("load_iris", "multiclass", None, "Fisher's iris flowers: 150 rows, 4 features, 3 species"),
    "wine": ("load_wine", "multiclass", None, "wine cultivars: 178 rows, 13 chemical features"),
    "diabetes": ("load_diabetes", "regression", None,
                 "diabetes progression after one year: 442 patients, 10 features"),
}


def load_builtin(name: str) -> Table:
    """Load a scikit-learn bundled dataset as a ``Table``; the target column is 'target'."""
    import sklearn.datasets

    loader_name, task, positive, description = BUILTIN[name]
    bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
    frame = bunch.frame.copy()
    class_names = {}
    if task != "regression":
        class_names = {i: str(n) for i, n in enumerate(bunch.target_names)}
    return Table(frame=frame, target="target", name=name, description=description,
                 task_hint=task, class_names=class_names, positive_class=positive)


def describe_builtin() -> list[tuple[str, str, str]]:
    return [(name, spec[1], spec[3]) for name, spec in BUILTIN.items()]


__all__ = ["BUILTIN", "load_builtin", "describe_builtin"]
