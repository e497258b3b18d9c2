"""Bad detection input: one line naming the row (spreadsheet numbering) and the image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfit.data.detection import read_challenge_csv
from deepfit.errors import DataError

HEADER = "Image_ID,class,ymin,xmin,ymax,xmax"


def _csv(tmp_path, rows: list[str], header: str = HEADER, images=("a.png", "b.png")):
    """Train.csv with ``rows`` and 40 (wide) x 30 (high) images in images/."""
    (tmp_path / "images").mkdir(exist_ok=True)
    for name in images:
        Image.new("RGB", (40, 30)).save(tmp_path / "images" / name)
    path = tmp_path / "Train.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("rows, message", [
    (["a.png,WBC,1,2,3,4", "b.png,WBC,5,9,15,3"],
     r"'Train.csv' row 3 \(image 'b.png'\): xmax < xmin \(xmin=9, ymin=5, xmax=3, ymax=15\); "
     "swap the two values"),
    (["a.png,WBC,1,2,3,4", "a.png,WBC,5,5,5,9", "b.png,WBC,5,5,5,9"],
     r"'Train.csv' row 3 \(image 'a.png'\): the box has zero height .* \(and 1 more rows\); "
     "remove the box or give it a size"),
    (["a.png,WBC,1,2,3,4", "b.png,WBC,1,2,31,60"],
     r"'Train.csv' row 3 \(image 'b.png'\): box \(xmin=2, ymin=1, xmax=60, ymax=31\) lies "
     "outside the 40x30 image; fix the coordinates"),
    (["a.png,WBC,1,2,3,x"],
     r"'Train.csv' row 2 \(image 'a.png'\): a box coordinate is missing or not a number"),
    (["a.png,WBC,1,2,3,4", "c.png,WBC,1,2,3,4"],
     r"'Train.csv' row 3 \(image 'c.png'\): image file '.*c.png' does not exist"),
    (["a.png,WBC,1,2,3,4", "a.tif.txt,WBC,1,2,3,4"],
     r"'Train.csv' row 3: image 'a.tif.txt' has .txt, not an image extension"),
    (["scan.dcm,WBC,1,2,3,4"], r"row 2: image 'scan.dcm' is a DICOM file"),
    (["a.png,WBC,1,2,3,4", "a.png,Trophozoite,1,2,3,4", "a.png,WBC,1,2,3,4"],
     r"'Train.csv' row 4 \(image 'a.png'\): the same WBC box as 'Train.csv' row 2; remove the "
     "repeated rows"),
    (["a.png,,1,2,3,4"], r"row 2 \(image 'a.png'\): the class cell is empty; .* write NEG"),
    ([",WBC,1,2,3,4"], r"row 2: the Image_ID cell is empty; .*header = row 1"),
    (["a.png,WBC,1,2,3,4", "b.png,wbc,1,2,3,4"],
     r"has classes that look like one class written differently: 'WBC' \(1 boxes\), 'wbc' "
     r"\(1\); merge them with 'data.label_map=\{wbc: WBC\}'"),
])
def test_each_kind_of_bad_box_is_one_line_naming_row_and_image(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        read_challenge_csv(_csv(tmp_path, rows))


def test_a_missing_column_is_named_with_a_suggestion(tmp_path):
    path = _csv(tmp_path, ["a.png,WBC,1,2,3,4"], header="Image_ID,class,ymin,xmin,ymax,x_max")
    with pytest.raises(DataError, match=r"has no column 'xmax' \(did you mean 'x_max'\?\); a "
                                        "detection CSV needs Image_ID, class"):
        read_challenge_csv(path)


def test_an_image_file_that_is_not_an_image_is_named_with_its_row(tmp_path):
    path = _csv(tmp_path, ["a.png,WBC,1,2,3,4"], images=())
    (tmp_path / "images" / "a.png").write_text("not a picture")
    with pytest.raises(DataError, match=r"row 2 \(image 'a.png'\): image '.*a.png' cannot be "
                                        "read: not an image PIL can read"):
        read_challenge_csv(path)


def test_a_neg_row_on_an_image_with_boxes_is_ignored_and_said(tmp_path):
    data = read_challenge_csv(_csv(tmp_path, ["a.png,NEG,0,0,0,0", "a.png,WBC,1,2,3,4",
                                              "b.png,neg,0,0,0,0"]))
    assert [len(im.labels) for im in data.images] == [1, 0]
    assert data.notes == ["'Train.csv' row 2: image 'a.png' is marked NEG but also has 1 "
                          "box(es); the NEG row is ignored"]


def test_boxes_a_pixel_past_the_edge_are_clipped_with_a_note(tmp_path):
    data = read_challenge_csv(_csv(tmp_path, ["a.png,WBC,-0.5,-1,10,40.8"]))
    np.testing.assert_array_equal(data.images[0].boxes, [[0, 0, 40, 10]])
    assert any("1 box(es) reaching up to 1 px past the image edge were clipped" in n
               for n in data.notes)


def test_a_box_fitting_the_turned_image_hints_at_exif(tmp_path):
    path = _csv(tmp_path, ["a.png,WBC,1,2,38,28"])
    with pytest.raises(DataError, match="it would fit the image turned a quarter"):
        read_challenge_csv(path)


def test_label_map_merges_lookalikes_and_the_group_column_is_checked(tmp_path):
    path = _csv(tmp_path, ["a.png,WBC,1,2,3,4,s1", "b.png,wbc,1,2,3,4,s2",
                           "a.png,Troph,5,5,9,9,s1"], header=HEADER + ",slide")
    data = read_challenge_csv(path, label_map={"wbc": "WBC"}, group_column="slide")
    assert data.class_names == ["Troph", "WBC"]
    assert [im.labels.tolist() for im in data.images] == [[1, 0], [1]]
    assert data.groups == ["s1", "s2"]
    path.write_text(path.read_text().replace("9,s1", "9,s2"))
    with pytest.raises(DataError, match=r"row 4: image 'a.png' is in group 's2' but 'Train.csv' "
                                        r"row 2 puts it in 's1'"):
        read_challenge_csv(path, label_map={"wbc": "WBC"}, group_column="slide")
    with pytest.raises(DataError, match=r"no column 'patient' \(data.group_column\)"):
        read_challenge_csv(path, group_column="patient")


def test_an_unused_column_is_noted(tmp_path):
    data = read_challenge_csv(_csv(tmp_path, ["a.png,WBC,1,2,3,4,x"], header=HEADER + ",note"))
    assert data.notes and "column(s) ['note'] not used" in data.notes[0]
