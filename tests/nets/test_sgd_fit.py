"""SRE nets must be trainable with plain SGD at PyTorch's usual learning rates: overfit 64 real MedMNIST images.

Measured here (seed 0, eval mode after recomputing the BatchNorm statistics): 0.953 (3D) and 1.000 (2D) with the
default band-average basis, 0.906 and 0.938 with the original SRE-Conv basis (``basis_norm="none"``) on the same runs
(docs/experiments.md). About 45 s (3D) and 20 s (2D) on the 2-core CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monai_sre.nets import get_model

DATA = Path(os.environ.get("MONAI_SRE_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data" / "medmnist")
WIDTHS = (16, 32, 64, 128)


def _balanced_subset(name: str, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    path = DATA / f"{name}.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set MONAI_SRE_DATA to the MedMNIST npz folder)")
    with np.load(path) as npz:
        images, labels = npz["train_images"], npz["train_labels"].reshape(-1)
    index = np.concatenate([np.flatnonzero(labels == c)[: n // 2] for c in (0, 1)])
    x = torch.from_numpy(images[index]).float().div(255.0).unsqueeze(1)
    return x, torch.from_numpy(labels[index]).long()


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize(
    "model, dataset, lr, epochs",
    [pytest.param("sre_r3d_18", "adrenalmnist3d", 0.02, 120, marks=pytest.mark.extended),
     ("sre_resnet18", "breastmnist", 0.01, 80)],
)
def test_sre_net_overfits_64_real_images_with_sgd(model, dataset, lr, epochs):
    torch.manual_seed(0)
    x, y = _balanced_subset(dataset)
    net = get_model(model, in_channels=1, num_classes=2, widths=WIDTHS)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * 4)
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(x)).split(16):
            loss = F.cross_entropy(net(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    # BatchNorm's running statistics lag behind the weights after a short run: recompute them for the final
    # weights (as for SWA) so that the eval-mode accuracy measures the fit, not the lag
    torch.optim.swa_utils.update_bn([x[i : i + 16] for i in range(0, len(x), 16)], net)
    net.eval()
    with torch.no_grad():
        acc = (net(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.95, f"{model} reached only {acc:.3f} training accuracy on 64 {dataset} images"
