"""GridTTA: mean probability over the exact grid rotations, so exactly invariant to them."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from monai.networks import eval_mode

from monai_sre.utils import GridTTA, grid_symmetries

# (spatial_dims, reflections, group size, input shape)
CASES = [
    (2, None, 8, (2, 1, 12, 12)),
    (3, None, 24, (2, 1, 8, 8, 8)),
    (3, True, 48, (1, 1, 6, 6, 6)),
]


class _Flat(nn.Module):
    """A classifier that sees where things are (a linear map of the flattened input): not invariant to anything."""

    def __init__(self, shape, num_classes=3):
        super().__init__()
        self.linear = nn.Linear(int(torch.tensor(shape[1:]).prod()), num_classes)

    def forward(self, x):
        return self.linear(x.flatten(1))


def _group(spatial_dims, reflections):
    return grid_symmetries(spatial_dims, rotations_only=not (spatial_dims == 2 if reflections is None else reflections))


@pytest.mark.parametrize("spatial_dims, reflections, size, shape", CASES)
def test_output_is_invariant_to_every_group_element_for_a_non_invariant_network(spatial_dims, reflections, size, shape):
    torch.manual_seed(0)
    net = _Flat(shape)
    tta = GridTTA(spatial_dims, net, reflections=reflections, chunk_size=5)
    x = torch.randn(*shape)
    group = _group(spatial_dims, reflections)
    assert len(tta.symmetries) == len(group) == size
    with torch.no_grad():
        y = tta(x)
        assert max((net(g(x)) - net(x)).abs().max().item() for g in group) > 0.1  # the network alone is not invariant
        for g in group:
            torch.testing.assert_close(tta(g(x)), y, atol=1e-5, rtol=0)


def test_3d_default_is_not_invariant_to_a_reflection():
    """The 3D default is the 24 rotations only: a mirror image is a different input to it."""
    torch.manual_seed(0)
    shape = (1, 1, 6, 6, 6)
    tta = GridTTA(3, _Flat(shape))
    x = torch.randn(*shape)
    with torch.no_grad():
        assert (tta(x.flip(2)) - tta(x)).abs().max() > 1e-3


@pytest.mark.parametrize("spatial_dims, reflections, size, shape", CASES[:2])
def test_softmax_of_the_output_is_the_mean_softmax(spatial_dims, reflections, size, shape):
    torch.manual_seed(1)
    net = _Flat(shape)
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = sum(torch.softmax(net(g(x)), dim=1) for g in _group(spatial_dims, reflections)) / size
        got = GridTTA(spatial_dims, net, reflections=reflections)(x)
    torch.testing.assert_close(torch.softmax(got, dim=1), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.exp(), expected, atol=1e-6, rtol=0)  # log(mean softmax) itself


def test_sigmoid_of_the_output_is_the_mean_sigmoid_for_multi_label():
    torch.manual_seed(2)
    shape = (3, 2, 10, 10)
    net = _Flat(shape, num_classes=4)
    x = 3 * torch.randn(*shape)
    with torch.no_grad():
        expected = sum(torch.sigmoid(net(g(x))) for g in grid_symmetries(2)) / 8
        got = GridTTA(2, net, activation="sigmoid")(x)
    torch.testing.assert_close(torch.sigmoid(got), expected, atol=1e-6, rtol=0)


def test_stacked_chunks_and_non_cubic_inputs_give_the_same_result():
    """``chunk_size`` only changes how many views go through the network at once; views of a non-cubic input that
    change shape go one by one."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv3d(1, 4, 3), nn.BatchNorm3d(4), nn.ReLU(), nn.AdaptiveAvgPool3d(2), nn.Flatten(),
                        nn.Linear(32, 2))
    cube, box = torch.randn(2, 1, 12, 12, 12), torch.randn(1, 1, 12, 10, 8)
    with eval_mode(net), torch.no_grad():
        one = GridTTA(3, net, chunk_size=1)
        for chunk in (4, 24):
            torch.testing.assert_close(GridTTA(3, net, chunk_size=chunk)(cube), one(cube), atol=1e-5, rtol=0)
        torch.testing.assert_close(GridTTA(3, net, chunk_size=24)(box), one(box), atol=1e-5, rtol=0)


def test_wrapper_follows_the_network_state():
    """Weights loaded into the wrapped network are the ones it uses, and eval mode reaches the network."""
    torch.manual_seed(4)
    shape = (1, 1, 8, 8)
    net = _Flat(shape)
    tta = GridTTA(2, net)
    assert set(tta.state_dict()) == {f"network.{k}" for k in net.state_dict()}
    nn.init.zeros_(net.linear.weight)
    nn.init.zeros_(net.linear.bias)
    with torch.no_grad():
        torch.testing.assert_close(tta(torch.randn(*shape)), torch.full((1, 3), -torch.log(torch.tensor(3.0))))
    tta.eval()
    assert not net.training


@pytest.mark.parametrize(
    "kwargs, error, match",
    [({"spatial_dims": 1}, ValueError, "spatial_dims"), ({"network": lambda x: x}, TypeError, "network"),
     ({"activation": "relu"}, ValueError, "activation"), ({"chunk_size": 0}, ValueError, "chunk_size")],
)
def test_bad_arguments(kwargs, error, match):
    args = {"spatial_dims": 2, "network": nn.Identity(), **kwargs}
    with pytest.raises(error, match=match):
        GridTTA(**args)


def test_input_of_the_wrong_dimension_is_refused():
    with pytest.raises(ValueError, match="spatial dims"):
        GridTTA(3, nn.Identity())(torch.zeros(1, 1, 4, 4))
