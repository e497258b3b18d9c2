"""Tests for deepfit.data.source_kind.resolve_source: the one reader of data.source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from image_samples import class_folders, gray, save
from deepfit.config import DataConfig
from deepfit.config_scope import IMAGE_SOURCES, TABLE_SOURCES
from deepfit.data.bundle import build_bundle
from deepfit.data.images.imageset import ImageSet
from deepfit.data.source_kind import resolve_source, source_kind
from deepfit.data.sources import load_table
from deepfit.errors import DataError


def _kind(source, **kw):
    return resolve_source(DataConfig(source=str(source), **kw))


def _image_set(n=12):
    return ImageSet(images=torch.zeros(n, 1, 4, 4, dtype=torch.uint8),
                    labels=np.arange(n) % 2, class_names=["a", "b"], name="mem",
                    description="in memory", ids=np.arange(n).astype(str))


def test_names_of_built_in_and_toy_sets_resolve_to_their_registry_key():
    cancer = _kind("Breast-Cancer")
    assert (cancer.kind, cancer.key, cancer.problem) == ("builtin", "breast_cancer", None)
    moons = _kind("moons")
    assert (moons.kind, moons.key) == ("toy", "moons")
    assert not cancer.is_images and not moons.is_images


def test_a_table_file_and_an_image_csv_are_told_apart_by_their_columns(tmp_path, tabular_csv):
    assert _kind(tabular_csv).kind == "table-file"
    save(tmp_path / "imgs" / "a.png", gray(1))
    listing = tmp_path / "list.csv"
    pd.DataFrame({"path": ["imgs/a.png"], "label": ["x"]}).to_csv(listing, index=False)
    image_table = _kind(listing)
    assert image_table.kind == "image-table" and image_table.is_images
    # Read as a table (load_table's view), the same CSV is a table file.
    assert resolve_source(DataConfig(source=str(listing)), table=True).kind == "table-file"


def test_image_folders_names_and_prefixes_resolve_without_loading(tmp_path):
    folder = class_folders(tmp_path / "pets", {"cat": 2, "dog": 2})
    assert _kind(folder).kind == "image-folder"
    assert _kind("mnist").kind == "image-named"  # nothing downloaded: the name is enough
    assert _kind("medmnist:pathmnist").kind == "image-medmnist"
    assert _kind("hf:owner/name").kind == "image-hub"


@pytest.mark.parametrize("data, kind", [
    (pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), "object"),
    ((np.zeros((2, 3)), np.array([0, 1])), "object"),
    (_image_set(), "image-object"),
])
def test_python_objects_resolve_by_their_type_whatever_data_source_says(data, kind):
    source = resolve_source(DataConfig(source="iris"), data)
    assert source.kind == kind and source.data is data and source.text == ""


def test_every_kind_is_one_the_config_scope_knows(tmp_path, tabular_csv):
    folder = class_folders(tmp_path / "pets", {"cat": 2, "dog": 2})
    kinds = {source_kind(DataConfig(source=s)) for s in
             ("iris", "moons", str(tabular_csv), str(folder), "mnist", "medmnist:bloodmnist",
              "hf:a/b", "nonsense")}
    kinds |= {source_kind(DataConfig(), pd.DataFrame({"y": [1]})),
              source_kind(DataConfig(), _image_set())}
    assert kinds <= set(TABLE_SOURCES) | set(IMAGE_SOURCES)


def test_an_unknown_name_is_one_line_when_loaded_not_when_resolved():
    source = _kind("irsi")
    assert source.kind == "table-file"  # the config scope is checked before this error
    message = ("unknown dataset 'irsi' (did you mean 'iris'?); give a file path or one of: "
               "breast_cancer, digits")
    assert source.problem.startswith(message) and "\n" not in source.problem
    for load in (lambda: load_table(DataConfig(source="irsi")),
                 lambda: build_bundle(DataConfig(source="irsi"))):
        with pytest.raises(DataError, match=r"^unknown dataset 'irsi' \(did you mean 'iris'"):
            load()


def test_a_config_trained_on_a_python_object_asks_for_the_object_again():
    source = _kind("python:DataFrame")
    assert source.kind == "table-file"
    with pytest.raises(DataError, match=r"trained on a Python object \(DataFrame\); pass the "
                                        r"data again"):
        source.check()


def test_image_settings_that_would_be_invalid_do_not_stop_a_table_from_resolving():
    # data.resize=pad without data.image_size is refused as not applying to a table (the
    # config scope), not as a bad image setting: resolving must not validate it.
    assert _kind("iris", resize="pad").kind == "builtin"
