"""MedMNIST read offline from MONAI_SRE_DATA (official npz files) and the missing-file message."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import DataLoader

from monai_sre.data import MEDMNIST_FLAGS, MedMNISTDataset, dataset_info, get_dataset

_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "data" / "medmnist"
DATA = Path(os.environ.get("MONAI_SRE_DATA") or _DEFAULT)


def _need(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{name} not found in {DATA} (set MONAI_SRE_DATA to the MedMNIST npz folder)")
    return path


# (name, size, split, image shape, number of classes)
CASES = [
    ("adrenalmnist3d", 28, "test", (1, 28, 28, 28), 2),
    ("adrenalmnist3d", 64, "val", (1, 64, 64, 64), 2),
    ("breastmnist", 28, "train", (1, 28, 28), 2),
]


@pytest.mark.data
@pytest.mark.parametrize("name,size,split,shape,num_classes", CASES)
def test_offline_load(name, size, split, shape, num_classes, monkeypatch):
    path = _need(f"{name}.npz" if size == 28 else f"{name}_{size}.npz")
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("network access attempted"))
    ds = MedMNISTDataset(name, split, root=DATA, size=size)
    raw = np.load(path)
    assert len(ds) == len(raw[f"{split}_labels"])
    item = ds[0]
    assert item["image"].shape == shape and item["image"].dtype == torch.float32
    np.testing.assert_allclose(item["image"][0].numpy(), raw[f"{split}_images"][0] / 255.0, atol=1e-6)
    assert item["label"] == int(raw[f"{split}_labels"][0, 0])
    labels = {ds[i]["label"] for i in range(len(ds))}
    assert labels <= set(range(num_classes)) and len(labels) == num_classes
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, *shape) and batch["label"].dtype == torch.int64


@pytest.mark.data
def test_env_root_and_get_dataset(monkeypatch):
    _need("breastmnist.npz")
    monkeypatch.setenv("MONAI_SRE_DATA", str(DATA))
    ds = get_dataset("breastmnist", "val", transform=lambda d: {**d, "seen": True})
    assert ds[0]["seen"] and ds[0]["image"].shape == (1, 28, 28)


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        MedMNISTDataset("adrenalmnist3d", "train", root=tmp_path, size=64)
    msg = str(err.value)
    assert str(tmp_path / "adrenalmnist3d_64.npz") in msg and "download=True" in msg and "--download true" in msg


def _fake_download(calls):
    """A stand-in for medmnist's BreastMNIST that writes a tiny file in its format when asked to download."""
    import medmnist

    class FakeBreast(medmnist.BreastMNIST):
        def __init__(self, split, root, size=28, download=False, **kwargs):
            calls.append(download)
            target = Path(root) / ("breastmnist.npz" if size == 28 else f"breastmnist_{size}.npz")
            if download and not target.is_file():
                rng = np.random.default_rng(0)
                np.savez(target, **{f"{s}_{k}": rng.integers(0, 2 if k == "labels" else 256,
                                                              (4, 1) if k == "labels" else (4, size, size), dtype=np.uint8)
                                    for s in ("train", "val", "test") for k in ("images", "labels")})
            super().__init__(split=split, root=root, size=size, download=False, **kwargs)

    return FakeBreast


def test_download_fetches_a_missing_file_once(tmp_path, monkeypatch):
    import monai_sre.data.medmnist as module
    from monai_sre.data import fetch_medmnist

    calls = []
    monkeypatch.setattr(module.medmnist, "BreastMNIST", _fake_download(calls))
    root = tmp_path / "new_folder"
    with pytest.raises(FileNotFoundError, match="--download true"):
        get_dataset("breastmnist", "train", root=root)
    assert calls == [] and not root.exists()  # nothing is fetched unless asked
    ds = get_dataset("breastmnist", "val", root=root, download=True)
    assert len(ds) == 4 and (root / "breastmnist.npz").is_file() and calls[0] is True
    assert fetch_medmnist("breastmnist", root) == str(root / "breastmnist.npz")  # there already: no download
    assert MedMNISTDataset("breastmnist", "test", root=root, download=True)[0]["image"].shape == (1, 28, 28)
    assert calls.count(True) == 1
    with pytest.raises(TypeError, match="download must be True or False"):
        get_dataset("breastmnist", "val", root=root, download="yes")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name"):
        MedMNISTDataset("cifar10", "train", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        MedMNISTDataset("breastmnist", "holdout", root=tmp_path)
    with pytest.raises(ValueError, match="size"):
        MedMNISTDataset("breastmnist", "train", root=tmp_path, size=32)


def test_chestmnist_multilabel_from_npz(tmp_path):
    """A tiny file in ChestMNIST's format gives float multi-hot labels."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 14), dtype=np.uint8)
    np.savez(tmp_path / "chestmnist.npz", **arrays)
    ds = MedMNISTDataset("chestmnist", "val", root=tmp_path)
    assert ds[1]["label"].dtype == torch.float32 and ds[1]["label"].shape == (14,)
    assert torch.equal(ds[1]["label"], torch.from_numpy(arrays["val_labels"][1].astype(np.float32)))
    assert ds[1]["image"].max() <= 1.0


def test_dataset_info_covers_paper_tasks():
    for flag in MEDMNIST_FLAGS:
        info = dataset_info(flag)
        assert info["spatial_dims"] == (3 if flag.endswith("3d") else 2)
        assert info["num_classes"] == len(info["label_names"]) >= 2
    assert dataset_info("pathmnist")["in_channels"] == 3
    assert dataset_info("chestmnist")["task"].startswith("multi-label")
    with pytest.raises(ValueError, match="name"):
        dataset_info("mnist")


@pytest.mark.data
def test_truncated_npz_names_the_file(tmp_path):
    raw = _need("breastmnist.npz").read_bytes()
    (tmp_path / "breastmnist.npz").write_bytes(raw[: len(raw) // 2])  # an interrupted download
    with pytest.raises(RuntimeError, match=r"breastmnist.npz .*truncated or corrupt: delete it and download"):
        MedMNISTDataset("breastmnist", "train", root=tmp_path)
    with pytest.raises(RuntimeError, match="breastmnist.npz"):
        get_dataset("breastmnist", "val", root=tmp_path)


def _fake_npz(path: Path, image_shape: tuple, keys=("train", "val", "test")) -> None:
    arrays = {}
    for split in keys:
        arrays[f"{split}_images"] = np.zeros((4, *image_shape), np.uint8)
        arrays[f"{split}_labels"] = np.zeros((4, 1), np.uint8)
    np.savez(path, **arrays)


def test_another_datasets_npz_names_the_file_the_shapes_and_the_bundle(tmp_path):
    _fake_npz(tmp_path / "adrenalmnist3d.npz", (28, 28))  # BreastMNIST's 2D images under the 3D set's name
    with pytest.raises(ValueError) as err:
        MedMNISTDataset("adrenalmnist3d", "train", root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "adrenalmnist3d.npz") in message and "\n" not in message
    assert "shape (4, 28, 28) but adrenalmnist3d at size 28 has ('N', 28, 28, 28)" in message
    assert "2D data: use bundles/sre_r18" in message
    _fake_npz(tmp_path / "breastmnist.npz", (28, 28, 28))  # and the other way round
    with pytest.raises(ValueError, match=r"breastmnist.npz holds train_images .* 3D data: use bundles/sre_r3d"):
        MedMNISTDataset("breastmnist", "train", root=tmp_path)


def test_npz_without_the_medmnist_arrays_names_what_it_holds(tmp_path):
    np.savez(tmp_path / "breastmnist.npz", images=np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(RuntimeError) as err:
        get_dataset("breastmnist", "train", root=tmp_path)
    message = str(err.value)
    assert "breastmnist.npz has no ['train_images', 'train_labels'] (it holds ['images'])" in message
    assert "truncated" not in message


def test_a_2d_dataset_for_a_3d_network_names_the_bundle_to_use():
    assert dataset_info("breastmnist", spatial_dims=2)["spatial_dims"] == 2
    with pytest.raises(ValueError, match=r"'breastmnist' holds 2D images but this network takes 3D ones: use "
                                         r"bundles/sre_r18 for 2D data"):
        dataset_info("breastmnist", spatial_dims=3)
    with pytest.raises(ValueError, match=r"'synthetic3d' holds 3D .* use bundles/sre_r3d"):
        dataset_info("synthetic3d", spatial_dims=2)
