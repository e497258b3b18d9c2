"""A corpus of bad tabular / image / config input, each run through the real CLI (in process).

Every case must end the same way: exit code 2, exactly one stderr line ``error: ...`` that
names the culprit (file, row, column, key or value), no traceback, the input files left
byte for byte as they were, and no run directory created (validation precedes training).
Image cases are class folders of valid 8x8 PNGs with one bad thing in them; decoded images
are cached under the test's own folder ($DEEPFIT_CACHE), never the home folder.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from image_samples import bomb_png
from PIL import Image

from deepfit.cli import main

# key=value overrides go first: argparse takes the positional group only once.
FAST = ["eval.plots=false", "eval.report=false", "eval.bootstrap=0"]


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": rng.normal(size=n),
                         "colour": rng.choice(["red", "green", "blue"], size=n),
                         "label": np.where(x1 > 0, "yes", "no")})


def _csv(tmp: Path, frame: pd.DataFrame | None = None, name: str = "data.csv") -> Path:
    path = tmp / name
    (_frame() if frame is None else frame).to_csv(path, index=False)
    return path


def _data(path: Path, target: str | None = "label") -> list[str]:
    return ["--data", str(path)] + (["--target", target] if target else [])


# -- builders: write the bad input under tmp, return (CLI args, expected substring) --------

def zero_byte_csv(tmp):
    p = tmp / "empty.csv"
    p.write_bytes(b"")
    return _data(p), "empty.csv' is empty (0 bytes)"


def header_only_csv(tmp):
    p = tmp / "header.csv"
    p.write_text("x1,x2,label\n")
    return _data(p), "header.csv' has a header but no data rows"


def ragged_row(tmp):
    p = _csv(tmp)
    lines = p.read_text().splitlines()
    lines[7] += ",1.5,extra"
    p.write_text("\n".join(lines) + "\n")
    return _data(p), "line 8"


def latin1_csv(tmp):
    p = _csv(tmp)
    p.write_bytes(p.read_bytes().replace(b"red", "r\xe9d".encode("latin-1")))
    return _data(p), "data.csv' is not UTF-8 text"


def binary_with_csv_extension(tmp):
    p = tmp / "blob.csv"
    p.write_bytes(bytes(range(256)) * 8)
    return _data(p), "blob.csv' is not UTF-8 text"


def nan_in_target(tmp):
    f = _frame()
    f.loc[5, "label"] = np.nan
    return _data(_csv(tmp, f)), "target column 'label' has 1 missing value(s), first at row 5"


def single_class_target(tmp):
    f = _frame()
    f["label"] = "yes"
    return _data(_csv(tmp, f)), "target column 'label' has a single value ('yes')"


def unknown_target(tmp):
    return _data(_csv(tmp), "lable"), "did you mean 'label'?"


def garbage_in_numeric(tmp):
    f = _frame().astype({"x2": object})
    f.loc[9, "x2"] = "n/a?"
    return _data(_csv(tmp, f)), "column 'x2' is numeric except for 'n/a?' at row 9"


def unknown_split_value(tmp):
    f = _frame()
    f["split"] = ["train"] * 40 + ["val"] * 10 + ["test"] * 9 + ["holdout"]
    return ["data.split_column=split"] + _data(_csv(tmp, f)), \
        "split column 'split' has value 'holdout' at row 59"


def class_missing_from_train(tmp):
    f = _frame()
    f["label"] = ["a", "b"] * 25 + ["c"] * 10
    f["split"] = ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    return ["data.split_column=split"] + _data(_csv(tmp, f)), \
        "class 'c' appears in the test split but not in training"


def label_spellings(tmp):
    f = _frame()
    f.loc[:4, "label"] = ["Yes ", "YES", "Yes ", "YES", "Yes "]  # hand-typed
    return _data(_csv(tmp, f)), ("target 'label' has classes that look like one class "
                                 "written differently: 'yes' (29 rows), 'Yes' (3), 'YES' (2)",
                                 # quoted: YAML would read Yes and YES as true
                                 """merge them with 'data.label_map={"Yes": "yes", "YES": "yes"}'""")


def npz_wrong_names(tmp):
    p = tmp / "arrays.npz"
    np.savez(p, arr_0=np.zeros((20, 3)), arr_1=np.zeros(20))
    return _data(p, None), "has arrays ['arr_0', 'arr_1']; name the features 'X' and the target 'y'"


def npz_length_mismatch(tmp):
    p = tmp / "arrays.npz"
    np.savez(p, X=np.zeros((20, 3)), y=np.zeros(19))
    return _data(p, None), "features have 20 rows but the target has 19"


def npz_object_array(tmp):
    p = tmp / "arrays.npz"
    np.savez(p, X=np.array([{"a": 1}] * 20, dtype=object), y=np.zeros(20))
    return _data(p, None), "arrays.npz' holds Python objects (pickled)"


def npy_one_dimensional(tmp):
    p = tmp / "vector.npy"
    np.save(p, np.arange(20.0))
    return _data(p, None), "holds an array of shape (20,)"


def empty_folder_as_data(tmp):
    d = tmp / "folder"
    d.mkdir()
    return _data(d, None), "folder' has no images"


def unsupported_extension(tmp):
    p = tmp / "book.xls"  # the old binary Excel format
    p.write_bytes(b"\xd0\xcf\x11\xe0 an old workbook")
    return _data(p), ("unsupported extension '.xls'", "save it as .xlsx or CSV")


def damaged_workbook(tmp):
    p = tmp / "book.xlsx"
    p.write_bytes(b"PK\x03\x04 not really a workbook")
    return _data(p), "book.xlsx' is not a readable Excel workbook"


def config_unknown_key(tmp):
    c = tmp / "cfg.yaml"
    c.write_text("train:\n  epochz: 3\n")
    return [str(c)] + _data(_csv(tmp)), "unknown config key 'train.epochz' (did you mean " \
                                        "'train.epochs'?)"


def config_wrong_type(tmp):
    c = tmp / "cfg.yaml"
    c.write_text("train:\n  epochs: many\n")
    return [str(c)] + _data(_csv(tmp)), "'train.epochs' = 'many' is not"


def negative_lr(tmp):
    return ["train.lr=-0.1"] + _data(_csv(tmp)), "'train.lr' = -0.1 is out of range"


def unknown_model(tmp):
    return ["--model", "mpl"] + _data(_csv(tmp)), "mpl"


def unknown_optimizer(tmp):
    return ["train.optimizer=adamm"] + _data(_csv(tmp)), "'train.optimizer' = 'adamm' is not " \
                                                         "allowed"


def strict_missing_gap(tmp):
    f = _frame()
    f.loc[11, "x1"] = np.nan
    return ["data.missing=strict"] + _data(_csv(tmp, f)), \
        "column 'x1' has 1 missing value(s), first at row 11"


def too_many_categories(tmp):
    f = _frame()
    f["code"] = [f"c{i % 30}" for i in range(len(f))]
    return ["data.max_categories=10"] + _data(_csv(tmp, f)), \
        "distinct text values (limit data.max_categories=10); if it is an identifier set " \
        "data.id_column=code"


def multilabel_not_binary(tmp):
    f = _frame()
    f["a"] = (f["x1"] > 0).astype(int)
    f["b"] = (f["x2"] > 0).astype(int)
    f.loc[13, "b"] = 2
    f = f.drop(columns="label")
    return ["data.targets=[a,b]"] + _data(_csv(tmp, f), None), \
        "label column 'b' has value 2 at row 13"


def sensitivity_without_target(tmp):
    return ["eval.threshold_objective=sensitivity"] + _data(_csv(tmp)), "eval.target"


def yaml_python_payload(tmp):
    sentinel = tmp / "PWNED"
    c = tmp / "cfg.yaml"
    c.write_text(f"train:\n  epochs: !!python/object/apply:os.system ['touch {sentinel}']\n")
    return [str(c)] + _data(_csv(tmp)), "cfg.yaml' is not valid YAML"


def invalid_run_name(tmp):
    return ["--name", "a/b"] + _data(_csv(tmp)), "run name 'a/b' may only use"


# -- image folders: class sub-folders of valid 8x8 PNGs plus one bad thing ------------------

def _png(seed: int, size: tuple[int, int] = (8, 8), fmt: str = "PNG") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def _image_folder(tmp: Path, name: str = "pets", per_class: int = 4,
                  classes: tuple[str, ...] = ("cat", "dog")) -> Path:
    root = tmp / name
    seed = 0
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            seed += 1
            (root / cls / f"img{i}.png").write_bytes(_png(seed))
    return root


def _unreadable(name: str, reason: str) -> str:
    return f"{name}' cannot be read: {reason}"


def image_zero_byte_png(tmp):
    root = _image_folder(tmp)
    (root / "cat" / "blank.png").write_bytes(b"")
    return _data(root, None), _unreadable("cat/blank.png", "the file is empty (0 bytes)")


def image_truncated_png(tmp):
    root = _image_folder(tmp)
    whole = _png(99)
    (root / "dog" / "cut.png").write_bytes(whole[: len(whole) // 2])
    return _data(root, None), _unreadable("dog/cut.png", "the file is truncated")


def image_truncated_jpeg(tmp):
    root = _image_folder(tmp)
    whole = _png(99, fmt="JPEG")
    (root / "dog" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    return _data(root, None), _unreadable("dog/cut.jpg", "the file is truncated")


def image_text_named_png(tmp):
    root = _image_folder(tmp)
    (root / "cat" / "notes.png").write_text("scanned on Monday; see the lab book\n")
    return _data(root, None), _unreadable("cat/notes.png", "not an image file")


def image_decompression_bomb(tmp):
    root = _image_folder(tmp)
    (root / "cat" / "bomb.png").write_bytes(bomb_png())
    return _data(root, None), _unreadable("cat/bomb.png", "decompression bomb")


def image_empty_class_folder(tmp):
    root = _image_folder(tmp)
    (root / "bird").mkdir()
    return _data(root, None), "pets/bird' has no images"


def image_dicom_folder(tmp):
    root = tmp / "scans"
    for cls in ("tumour", "normal"):
        (root / cls).mkdir(parents=True)
        for i in range(3):  # DICOM: 128-byte preamble, then 'DICM'
            (root / cls / f"slice{i}.dcm").write_bytes(bytes(128) + b"DICM" + bytes(64))
    return _data(root, None), ("has no images", "it holds DICOM files",
                               "export the slices as PNG first")


def image_group_column(tmp):
    return _data(_image_folder(tmp), None) + ["data.group_column=patient"], \
        ("data.group_column=patient", "does not apply", "image CSVs",
         "keep each group together with train/ val/ test/ folders")


def image_sizes_differ(tmp):
    root = _image_folder(tmp)
    (root / "dog" / "big.png").write_bytes(_png(99, size=(12, 10)))
    return _data(root, None), ("dog/big.png' is 12x10 (height x width) but",
                               "cat/img0.png' is 8x8; set data.image_size")


def image_medmnist_count_mismatch(tmp):
    p = tmp / "organs.npz"
    images = np.zeros((10, 8, 8), np.uint8)
    labels = np.zeros((10, 1), np.uint8)
    np.savez(p, train_images=images, train_labels=labels[:9], val_images=images[:4],
             val_labels=labels[:4], test_images=images[:4], test_labels=labels[:4])
    return _data(p, None), "organs.npz': 'train_labels' has 9 rows but 'train_images' has 10"


def image_csv_missing_file(tmp):
    root = _image_folder(tmp)
    rows = [(f"{c}/img{i}.png", c) for c in ("cat", "dog") for i in range(4)]
    rows.insert(5, ("dog/ghost.png", "dog"))
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(root / "list.csv", index=False)
    return _data(root / "list.csv", None), \
        "list.csv' row 6: image file 'dog/ghost.png' does not exist"


def image_label_map_unknown_class(tmp):
    root = _image_folder(tmp)
    return ["data.label_map={cat: pet, dgo: pet}"] + _data(root, None), \
        "data.label_map names class 'dgo', which pets does not have (did you mean 'dog'?)"


def image_class_spellings(tmp):
    root = _image_folder(tmp, classes=("cat", "Cat", "dog"))
    return _data(root, None), "pets has classes that look like one class written " \
        "differently: 'Cat' (4 images), 'cat' (4); merge them with 'data.label_map={cat: Cat}'"


CASES = [zero_byte_csv, header_only_csv, ragged_row, latin1_csv, binary_with_csv_extension,
         nan_in_target, single_class_target, unknown_target, garbage_in_numeric,
         unknown_split_value, class_missing_from_train, npz_wrong_names, npz_length_mismatch,
         npz_object_array, npy_one_dimensional, empty_folder_as_data, unsupported_extension,
         damaged_workbook,
         config_unknown_key, config_wrong_type, negative_lr, unknown_model, unknown_optimizer,
         strict_missing_gap, too_many_categories, multilabel_not_binary,
         sensitivity_without_target, yaml_python_payload, invalid_run_name,
         image_zero_byte_png, image_truncated_png, image_truncated_jpeg, image_text_named_png,
         image_decompression_bomb, image_empty_class_folder, image_dicom_folder,
         image_group_column,
         image_sizes_differ,
         image_medmnist_count_mismatch, image_csv_missing_file, image_label_map_unknown_class,
         label_spellings, image_class_spellings]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Decoded images go to the test's folder, not ~/.cache."""
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _one_error_line(err: str, expected: str | tuple[str, ...]) -> str:
    """The single ``error:`` line; ``expected`` is a substring, or several that must all
    appear in it."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    for part in (expected,) if isinstance(expected, str) else expected:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("build", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_is_one_clear_line_and_changes_nothing(build, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    args, expected = build(inputs)
    before = _hashes(inputs)
    out = tmp_path / "runs"
    code = main(["train", *FAST, *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    line = _one_error_line(err, expected)
    print(f"{build.__name__}: {line}")
    assert _hashes(inputs) == before  # nothing written, nothing altered
    assert not (out.is_dir() and any(out.iterdir())), list(out.iterdir())
    assert not (inputs / "PWNED").exists()  # the YAML payload never ran


# -- predict with columns that do not match the training columns --------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    data = _csv(root)
    code = main(["train", *FAST, "model.hidden=[8]", *_data(data), "--out", str(root / "runs"),
                 "--name", "tiny", "--epochs", "2", "--quiet"])
    assert code == 0
    return root / "runs" / "tiny"


@pytest.mark.parametrize("change, expected", [
    (lambda f: f.drop(columns="x2"), "missing column(s) ['x2']"),
    (lambda f: f.assign(surprise=1.0), "column(s) ['surprise'] were not seen in training"),
], ids=["missing_column", "extra_column"])
def test_predict_with_mismatched_columns(tiny_run, tmp_path, capsys, change, expected):
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = _csv(inputs, change(_frame(20, seed=1).drop(columns="label")), "new.csv")
    before = _hashes(inputs)
    run_before = _hashes(tiny_run)
    capsys.readouterr()
    out = tmp_path / "preds.csv"
    code = main(["predict", str(tiny_run), str(path), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    _one_error_line(err, expected)
    assert "new.csv" in err
    assert not out.exists()
    assert _hashes(inputs) == before and _hashes(tiny_run) == run_before


# -- image runs: evaluation on an unseen class, and the bad_images=skip policy ---------------

@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_run")
    folder = _image_folder(root, per_class=6)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPFIT_CACHE", str(root / "cache"))
        code = main(["train", *FAST, "model.channels=[4]", "--data", str(folder),
                     "--out", str(root / "runs"), "--name", "pets", "--epochs", "1",
                     "--quiet"])
    assert code == 0
    return root / "runs" / "pets", folder


def test_evaluating_an_image_run_on_an_unseen_class_is_one_clear_line(image_run, tmp_path,
                                                                      capsys):
    run, trained_on = image_run
    inputs = tmp_path / "in"
    folder = _image_folder(inputs, per_class=2, classes=("cat", "dog", "bird"))
    before, run_before = _hashes(inputs), _hashes(run)
    capsys.readouterr()
    code = main(["evaluate", str(run), "--data", str(folder)])
    err = capsys.readouterr().err
    assert code == 2, err
    _one_error_line(err, ("bird/img0.png' has class 'bird', which the model was not trained on",
                          "['cat', 'dog']"))
    assert _hashes(inputs) == before and _hashes(run) == run_before
    # The classes it knows evaluate fine.
    assert main(["evaluate", str(run), "--data", str(trained_on)]) == 0


def test_bad_images_skip_trains_anyway_and_reports_what_it_left_out(tmp_path, capsys):
    inputs = tmp_path / "in"
    root = _image_folder(inputs, per_class=8)
    whole = _png(99)
    bad = {"cat/blank.png": b"", "cat/notes.png": b"not an image\n",
           "dog/cut.png": whole[: len(whole) // 2], "dog/bomb.png": bomb_png()}
    for name, data in bad.items():
        (root / name).write_bytes(data)
    before = _hashes(inputs)
    code = main(["train", "eval.plots=false", "eval.bootstrap=0", "data.bad_images=skip",
                 "model.channels=[4]", "--data", str(root), "--out", str(tmp_path / "runs"),
                 "--name", "skip", "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    run = tmp_path / "runs" / "skip"
    data = json.loads((run / "summary.json").read_text())["data"]
    skipped = dict(data["images"]["skipped"])
    assert {Path(name).relative_to(root).as_posix() for name in skipped} == set(bad)
    reasons = {Path(name).relative_to(root).as_posix(): why for name, why in skipped.items()}
    assert reasons["cat/blank.png"] == "the file is empty (0 bytes)"
    assert reasons["dog/cut.png"] == "the file is truncated"
    assert reasons["cat/notes.png"].startswith("not an image file")
    assert reasons["dog/bomb.png"].startswith("decompression bomb")
    assert sum(data["split_sizes"].values()) == 16  # the good images, all of them
    assert any("4 unreadable image(s) skipped (data.bad_images=skip)" in note
               for note in data["notes"])
    inputs_line = next(line for line in (run / "report.md").read_text().splitlines()
                       if line.startswith("- Inputs:"))
    assert "4 unreadable image(s) skipped" in inputs_line
    assert "4 unreadable image(s) skipped" in (run / "report.html").read_text()
    assert _hashes(inputs) == before  # the bad files are left where they were
