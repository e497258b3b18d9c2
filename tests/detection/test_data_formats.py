"""Detection formats: the challenge CSV, COCO JSON and YOLO, read, written, detected."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfit.data.detection import (DetectionSet, ImageBoxes, detect_format, load_detection,
                                    make_smears, read_challenge_csv, read_coco, read_yolo,
                                    write_challenge_csv, write_coco, write_synthetic_smear,
                                    write_yolo)
from deepfit.errors import DataError


@pytest.fixture(scope="module")
def smear(tmp_path_factory):
    """A challenge-layout folder of 12 synthetic smears (64 x 80 px)."""
    root = tmp_path_factory.mktemp("smear")
    write_synthetic_smear(root, n_images=12, size=(64, 80), seed=3)
    return root


def test_the_challenge_csv_reads_boxes_neg_images_and_sizes(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (50, 40)).save(tmp_path / "images" / "a.jpg")
    Image.new("RGB", (30, 20)).save(tmp_path / "images" / "b.png")
    (tmp_path / "Train.csv").write_text(
        "Image_ID,class,confidence,ymin,xmin,ymax,xmax\n"
        "a.jpg,Trophozoite,1.0,5,10,15,20\n"
        "b.png,NEG,1.0,0,0,0,0\n"
        "a.jpg,WBC,1.0,0,0,40,50\n")
    data = read_challenge_csv(tmp_path / "Train.csv")
    assert data.class_names == ["Trophozoite", "WBC"]
    a, b = data.images
    assert (a.image_id, a.size, b.image_id, b.size) == ("a.jpg", (40, 50), "b.png", (20, 30))
    assert a.boxes.dtype == np.float32 and a.labels.dtype == np.int64
    np.testing.assert_array_equal(a.boxes, [[10, 5, 20, 15], [0, 0, 50, 40]])  # xyxy
    np.testing.assert_array_equal(a.labels, [0, 1])
    assert b.is_negative and b.boxes.shape == (0, 4)
    assert data.notes == []  # 'confidence' is the challenge's own column: no note
    assert data.path(1) == tmp_path / "images" / "b.png"


def test_csv_to_coco_to_csv_is_the_identity(smear, tmp_path):
    data = load_detection(smear, group_column="slide")
    assert data.groups is not None and any(im.is_negative for im in data.images)
    coco = write_coco(data, tmp_path / "coco" / "annotations.json")
    back = read_coco(coco, image_dir=smear / "images", group_column="group")
    assert back == data and back.groups == data.groups
    csv = write_challenge_csv(back, tmp_path / "again.csv", group_column="slide")
    assert csv.read_text() == (smear / "Train.csv").read_text()


def test_csv_to_yolo_and_back_keeps_every_box(smear, tmp_path):
    data = load_detection(smear)
    root = write_yolo(data, tmp_path / "yolo")
    assert (root / "labels" / "smear_0000.txt").exists() and (root / "data.yaml").exists()
    back = read_yolo(root)
    assert back.class_names == data.class_names
    for a, b in zip(data.images, back.images):
        assert (a.image_id, a.size) == (b.image_id, b.size)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    # YOLO -> CSV -> YOLO: the same label files, byte for byte
    write_challenge_csv(back, tmp_path / "yolo" / "Train.csv")
    again = read_challenge_csv(tmp_path / "yolo" / "Train.csv")
    write_yolo(again, tmp_path / "yolo2")
    assert ((tmp_path / "yolo2/labels/smear_0001.txt").read_text()
            == (root / "labels/smear_0001.txt").read_text())


def test_yolo_reads_classes_txt_dict_names_and_missing_label_files(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (100, 50)).save(tmp_path / "images" / "a.png")
    Image.new("RGB", (100, 50)).save(tmp_path / "images" / "b.png")
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n\n")
    (tmp_path / "data.yaml").write_text("names:\n  0: WBC\n  1: Trophozoite\n")
    data = read_yolo(tmp_path)
    assert data.class_names == ["WBC", "Trophozoite"]
    np.testing.assert_allclose(data.images[0].boxes, [[40, 15, 60, 35]])
    assert data.images[1].is_negative
    assert any("1 image(s) without a label file" in n for n in data.notes)
    (tmp_path / "data.yaml").unlink()
    (tmp_path / "classes.txt").write_text("x\ny\n")
    assert read_yolo(tmp_path).class_names == ["x", "y"]
    (tmp_path / "labels" / "a.txt").write_text("2 0.5 0.5 0.2 0.4\n")
    with pytest.raises(DataError, match=r"'labels/a.txt' line 1 \(image 'a.png'\): class 2 is "
                                        r"not among the 2 names"):
        read_yolo(tmp_path)


def test_coco_neg_category_crowd_and_bad_references(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    Image.new("RGB", (40, 30)).save(tmp_path / "b.png")
    spec = {"images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30},
                       {"id": 8, "file_name": "b.png", "width": 40, "height": 30}],
            "categories": [{"id": 3, "name": "WBC"}, {"id": 1, "name": "NEG"},
                           {"id": 2, "name": "Trophozoite"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5]},
                            {"id": 2, "image_id": 8, "category_id": 1, "bbox": [0, 0, 0, 0]},
                            {"id": 3, "image_id": 7, "category_id": 2, "bbox": [5, 5, 4, 4],
                             "iscrowd": 1}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(spec))
    data = read_coco(path)
    assert data.class_names == ["Trophozoite", "WBC"]  # by category id, NEG left out
    np.testing.assert_array_equal(data.images[0].boxes, [[1, 2, 11, 7]])
    assert data.images[0].labels.tolist() == [1] and data.images[1].is_negative
    assert any("1 crowd region(s)" in n for n in data.notes)
    spec["annotations"][0]["image_id"] = 99
    path.write_text(json.dumps(spec))
    with pytest.raises(DataError, match=r"'ann.json' annotation id 1: image_id 99 is not in "
                                        "'images'"):
        read_coco(path)
    spec["annotations"][0]["image_id"] = 7
    spec["images"][0]["width"] = 41
    path.write_text(json.dumps(spec))
    with pytest.raises(DataError, match=r"image id 7: image 'a.png' is stated as 41x30 \(width "
                                        r"x height\) but the file is 40x30"):
        read_coco(path)


def test_detect_format_finds_each_layout_and_names_what_it_expects(smear, tmp_path):
    assert detect_format(smear) == ("challenge-csv", smear / "Train.csv")
    assert detect_format(smear / "Train.csv")[0] == "challenge-csv"
    data = load_detection(smear)
    coco = write_coco(data, tmp_path / "c" / "annotations" / "instances_train.json")
    assert detect_format(tmp_path / "c") == ("coco", coco)
    yolo = write_yolo(data, tmp_path / "y")
    assert detect_format(yolo) == ("yolo", yolo)
    assert detect_format(yolo / "data.yaml") == ("yolo", yolo)
    with pytest.raises(DataError, match="does not apply to the YOLO folder"):
        load_detection(yolo, group_column="slide")
    (tmp_path / "plain").mkdir()
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(tmp_path / "plain" / "x.csv", index=False)
    with pytest.raises(DataError, match=r"holds no detection data set; expected a challenge "
                                        r"CSV \(Image_ID, class"):
        detect_format(tmp_path / "plain")
    with pytest.raises(DataError, match="is not a detection annotation file"):
        detect_format(tmp_path / "plain" / "x.csv")


def test_image_boxes_is_frozen_and_the_set_refuses_neg_as_a_class():
    im = ImageBoxes("a.png", (10, 20), [[1, 2, 3, 4]], [0])
    assert im.boxes.shape == (1, 4) and not im.boxes.flags.writeable
    with pytest.raises(AttributeError):
        im.image_id = "b.png"
    with pytest.raises(ValueError, match="not a class"):
        DetectionSet(["NEG", "WBC"], [im])


def test_make_smears_is_deterministic_from_its_seed():
    images_a, a = make_smears(4, (48, 48), seed=5)
    images_b, b = make_smears(4, (48, 48), seed=5)
    _, c = make_smears(4, (48, 48), seed=6)
    assert a == b and all(np.array_equal(x, y) for x, y in zip(images_a, images_b))
    assert a != c
