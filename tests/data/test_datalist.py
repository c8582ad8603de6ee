from __future__ import annotations

import json
import os

import pytest

from monai_sre.data import read_datalist

def test_json_and_csv_give_the_same_items(tmp_path):
    (tmp_path / "dl.json").write_text(json.dumps({"training": [{"image": "a.nii", "label": 0}],
                                                  "test": [{"image": "/abs/b.nii", "label": 1}]}))
    (tmp_path / "dl.csv").write_text("image,label,split\na.nii,0,training\n/abs/b.nii,1,test\n")
    for name in ("dl.json", "dl.csv"):
        train = read_datalist(tmp_path / name, "train")
        test = read_datalist(tmp_path / name, "test")
        assert [it["image"] for it in train] == [os.path.join(str(tmp_path), "a.nii")]
        assert [it["image"] for it in test] == ["/abs/b.nii"]
    assert read_datalist(tmp_path / "dl.json", "train", base_dir="/data")[0]["image"] == "/data/a.nii"


def test_inference_forms(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps(["x/a.nii", {"image": "b.nii"}]))
    (tmp_path / "keyed.json").write_text(json.dumps({"data": ["x/a.nii", "b.nii"]}))
    expected = [str(tmp_path / "x" / "a.nii"), str(tmp_path / "b.nii")]
    for name in ("list.json", "keyed.json"):
        assert [it["image"] for it in read_datalist(tmp_path / name, None, fields=("image",))] == expected


# (file name, content, split, error type, pattern): every message names the datalist
BAD = [
    ("missing.json", None, "train", FileNotFoundError, "datalist not found: .*missing.json"),
    ("dl.txt", "x", "train", ValueError, "must be a .json or .csv file"),
    ("dl.json", {"training": []}, "val", ValueError, "dl.json has no 'validation' list"),
    ("dl.json", {"training": [{"image": "a.nii"}]}, "train", ValueError, "dl.json entry 0 of 'training' needs"),
    ("dl.json", {"training": "a.nii"}, "train", ValueError, "'training' must be a list"),
    ("dl.csv", "image\na.nii\n", "train", ValueError, "dl.csv needs 'image' and 'label' columns"),
    ("dl.json", ["a.nii"], "holdout", ValueError, "split must be one of"),
]


@pytest.mark.parametrize("name,content,split,error,pattern", BAD)
def test_bad_datalists_name_the_file(tmp_path, name, content, split, error, pattern):
    if content is not None:
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(error, match=pattern):
        read_datalist(tmp_path / name, split)
