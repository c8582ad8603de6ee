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


def test_split_names_match_in_any_letter_case(tmp_path):
    (tmp_path / "dl.csv").write_text("image,label,split\na.nii,0,Training\nb.nii,1, VAL \nc.nii,0,TEST\nd.nii,1,\n")
    (tmp_path / "dl.json").write_text(json.dumps({"Training": ["a.nii"], "VALIDATION": ["b.nii"], "Test": ["c.nii"],
                                                  "name": "a Decathlon task"}))
    for name, every in (("dl.csv", ["d.nii"]), ("dl.json", [])):
        for split, image in (("train", "a.nii"), ("Validation", "b.nii"), ("TEST", "c.nii")):
            items = read_datalist(tmp_path / name, split, fields=("image",))
            assert [os.path.basename(it["image"]) for it in items] == [image] + every


def test_a_row_with_an_unknown_split_is_an_error_naming_it(tmp_path):
    (tmp_path / "dl.csv").write_text("image,label,split\na.nii,0,training\nb.nii,1,valid\nc.nii,1,test\n")
    for split in ("train", "val", "test"):  # never silently dropped, whichever split is read
        with pytest.raises(ValueError, match=r"dl.csv: 1 row\(s\) name an unknown split: line 3 \('b.nii'\): split "
                                             r"'valid'. The known splits are training/validation/test"):
            read_datalist(tmp_path / "dl.csv", split)


def test_two_lists_for_one_split_are_an_error(tmp_path):
    (tmp_path / "dl.json").write_text(json.dumps({"training": ["a.nii"], "Train": ["b.nii"]}))
    with pytest.raises(ValueError, match=r"2 lists for the 'training' split \(\['training', 'Train'\]\)"):
        read_datalist(tmp_path / "dl.json", "train", fields=("image",))


# (content, message): syntax errors and empty files name the file, the line and the column
BAD_JSON = [
    ("", r"dl.json is empty at line 1, column 1"),
    ("  \n\n", r"dl.json is empty at line 3, column 1"),
    ('{"training": [\n  {"image": "a.nii", "label": 0},\n]}', r"dl.json is not valid JSON \(.*\) at line 3, column 1"),
    ('{"training": [{"image": "a.nii" "label": 0}]}', r"dl.json is not valid JSON \(.*\) at line 1, column 33"),
]


@pytest.mark.parametrize("content,message", BAD_JSON)
def test_json_errors_name_the_file_line_and_column(tmp_path, content, message):
    (tmp_path / "dl.json").write_text(content)
    for split in ("train", None):
        with pytest.raises(ValueError, match=message):
            read_datalist(tmp_path / "dl.json", split)


def test_empty_csv_is_named(tmp_path):
    (tmp_path / "dl.csv").write_text("")
    with pytest.raises(ValueError, match=r"CSV datalist .*dl.csv is empty"):
        read_datalist(tmp_path / "dl.csv", "train")
