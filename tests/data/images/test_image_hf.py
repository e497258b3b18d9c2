"""Hugging Face image tables: Parquet, Arrow, folders of them, save_to_disk, the hub."""

import json
import sys
import types

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from image_samples import encoded, gray, hf_table, rgb, save

from deepfit.data.images.load import ImageOptions, is_image_source, load_images
from deepfit.errors import DataError

NAMES = ["cat", "dog", "bird"]


def _table(n=4, seed=0, labels=None, names=NAMES, **kw):
    images = [encoded(gray(seed + i)) for i in range(n)]
    return hf_table(images, labels if labels is not None else [i % 3 for i in range(n)],
                    names, **kw)


def _arrow_stream(path, table):
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def test_parquet_with_classlabel_metadata(tmp_path):
    path = tmp_path / "pets.parquet"
    pq.write_table(_table(), path)
    assert is_image_source(str(path), ImageOptions())
    data = load_images(str(path), ImageOptions())
    assert data.class_names == NAMES and data.labels.tolist() == [0, 1, 2, 0]
    assert data.images.shape == (4, 1, 8, 8)
    assert np.array_equal(data.images[1, 0].numpy(), gray(1))
    assert data.ids.tolist()[0] == "pets/0" and data.split is None
    assert data.origin == "decoded 4 encoded images"


def test_folder_of_parquet_shards_takes_splits_from_file_names(tmp_path):
    (tmp_path / "data").mkdir()
    pq.write_table(_table(4, 0), tmp_path / "data" / "train-00000-of-00002.parquet")
    pq.write_table(_table(2, 10), tmp_path / "data" / "train-00001-of-00002.parquet")
    pq.write_table(_table(2, 20), tmp_path / "data" / "validation-00000-of-00001.parquet")
    pq.write_table(_table(3, 30), tmp_path / "data" / "test-00000-of-00001.parquet")
    data = load_images(str(tmp_path), ImageOptions())
    assert data.split.tolist() == ["test"] * 3 + ["train"] * 6 + ["val"] * 2
    assert data.ids.tolist()[3:5] == ["train/0", "train/1"] and data.ids[8] == "train/5"


def test_shards_without_a_split_name_next_to_split_shards(tmp_path):
    pq.write_table(_table(), tmp_path / "train.parquet")
    pq.write_table(_table(), tmp_path / "extra.parquet")
    with pytest.raises(DataError, match="cannot tell the split of '.*extra.parquet'"):
        load_images(str(tmp_path), ImageOptions())


def test_arrow_stream_file_and_string_labels(tmp_path):
    images = [encoded(rgb(i)) for i in range(3)]
    table = hf_table(images, ["zebra", "ant", "zebra"], names=None)
    path = _arrow_stream(tmp_path / "data-00000-of-00001.arrow", table)
    assert is_image_source(str(path), ImageOptions())
    data = load_images(str(path), ImageOptions())
    assert data.class_names == ["ant", "zebra"] and data.labels.tolist() == [1, 0, 1]
    assert data.images.shape == (3, 3, 8, 8)


def test_save_to_disk_dataset_dict(tmp_path):
    root = tmp_path / "saved"
    for split, n in (("train", 4), ("test", 2)):
        table = _table(n, seed=n)
        _arrow_stream(root / split / "data-00000-of-00001.arrow", table.replace_schema_metadata())
        (root / split / "state.json").write_text(json.dumps({"_data_files": []}))
        (root / split / "dataset_info.json").write_text(json.dumps(
            {"features": {"image": {"_type": "Image"},
                          "label": {"names": NAMES, "_type": "ClassLabel"}}}))
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    data = load_images(str(root), ImageOptions())
    assert data.split.tolist() == ["train"] * 4 + ["test"] * 2
    assert data.class_names == NAMES  # from dataset_info.json: the schema had no metadata
    assert data.name == "saved"
    single = load_images(str(root / "train"), ImageOptions())  # one saved Dataset
    assert len(single) == 4 and single.split is None and single.class_names == NAMES


def test_arrow_ipc_file_format(tmp_path):
    path = tmp_path / "table.arrow"
    table = _table(3)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data = load_images(str(path), ImageOptions())
    assert len(data) == 3 and data.class_names == NAMES


def test_multilabel_sequence_of_classlabel(tmp_path):
    images = [encoded(gray(i)) for i in range(3)]
    table = hf_table(images, [[0, 2], [], [1]], names=NAMES, label_type="Sequence")
    pq.write_table(table, tmp_path / "tags.parquet")
    data = load_images(str(tmp_path / "tags.parquet"), ImageOptions())
    assert data.task_hint == "multilabel"
    assert data.labels.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]


def test_image_paths_instead_of_bytes(tmp_path):
    save(tmp_path / "pics" / "a.png", gray(1))
    table = pa.table({"img": ["pics/a.png", "pics/missing.png"], "label": [0, 1]})
    pq.write_table(table, tmp_path / "paths.parquet")
    with pytest.raises(DataError, match="row 1: image file 'pics/missing.png' does not exist"):
        load_images(str(tmp_path / "paths.parquet"), ImageOptions())


def test_bad_embedded_image_and_unlabelled_rows(tmp_path):
    table = hf_table([encoded(gray(0)), b"junk"], [0, 1], NAMES)
    pq.write_table(table, tmp_path / "junk.parquet")
    with pytest.raises(DataError, match=r"image '.*junk.parquet row 1' cannot be read"):
        load_images(str(tmp_path / "junk.parquet"), ImageOptions())
    kept = load_images(str(tmp_path / "junk.parquet"), ImageOptions(bad_images="skip"))
    assert len(kept) == 1 and kept.skipped[0][0].endswith("junk.parquet row 1")
    pq.write_table(_table(labels=[0, -1, 1, -1]), tmp_path / "unlabelled.parquet")
    with pytest.raises(DataError, match="unlabelled.parquet' row 1: no label \\(-1\\) .* 2 "
                                        "row\\(s\\) in all"):
        load_images(str(tmp_path / "unlabelled.parquet"), ImageOptions())


def test_a_wholly_unlabelled_split_is_left_out(tmp_path):
    pq.write_table(_table(4), tmp_path / "train.parquet")
    pq.write_table(_table(2, labels=[-1, -1]), tmp_path / "test.parquet")
    data = load_images(str(tmp_path), ImageOptions())
    assert data.split.tolist() == ["train"] * 4
    assert data.description.endswith(f"left out unlabelled {tmp_path / 'test.parquet'}")


def test_plain_parquet_is_not_an_image_source(tmp_path):
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": [0, 1]}), tmp_path / "t.parquet")
    assert not is_image_source(str(tmp_path / "t.parquet"), ImageOptions())
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 nothing")
    assert not is_image_source(str(tmp_path / "broken.parquet"), ImageOptions())


def test_named_columns(tmp_path):
    table = pa.table({"picture": [encoded(gray(i)) for i in range(2)], "kind": ["a", "b"],
                      "other": [1, 2]})
    pq.write_table(table, tmp_path / "named.parquet")
    with pytest.raises(DataError, match="has no image column .* data.image_column"):
        load_images(str(tmp_path / "named.parquet"), ImageOptions())
    data = load_images(str(tmp_path / "named.parquet"),
                       ImageOptions(image_column="picture", label_column="kind"))
    assert data.class_names == ["a", "b"]


def test_hub_without_the_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    assert is_image_source("hf:owner/name", ImageOptions())
    with pytest.raises(DataError, match="pip install 'deepfit\\[hf\\]'"):
        load_images("hf:owner/name@config", ImageOptions())
    with pytest.raises(DataError, match="not a hub dataset name"):
        load_images("hf:bad name!", ImageOptions())


def test_hub_dataset_through_a_stand_in_datasets_package(monkeypatch, tmp_path):
    calls = {}

    def load_dataset(path, name=None, cache_dir=None, trust_remote_code=None):
        calls.update(path=path, name=name, trust=trust_remote_code, cache_dir=cache_dir)
        if path == "owner/offline":
            raise ConnectionError("Couldn't reach 'owner/offline' on the Hub (LocalEntryNotFound)")
        def split(n):
            return types.SimpleNamespace(data=types.SimpleNamespace(table=_table(n)),
                                         features=None)

        return {"train": split(4), "validation": split(2)}

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    data = load_images("hf:owner/pets@small", ImageOptions(root=str(tmp_path)))
    assert calls == {"path": "owner/pets", "name": "small", "trust": False,
                     "cache_dir": str(tmp_path / "huggingface")}
    assert data.split.tolist() == ["train"] * 4 + ["val"] * 2 and data.class_names == NAMES
    assert data.name == "pets"
    load_images("hf:owner/pets", ImageOptions(trust_remote_code=True))
    assert calls["trust"] is True and calls["name"] is None
    with pytest.raises(DataError, match="could not load Hugging Face dataset 'owner/offline' "
                                        "\\(offline, misspelt or private\\?\\): Couldn't reach"):
        load_images("hf:owner/offline", ImageOptions())
