"""``convert_to_sre`` on every network class of ``monai.networks.nets`` (the cases of ``monai_network_cases.py``):
exactly equivariant after conversion, or refused with every offending module named."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
from monai_network_cases import CASES, NOT_BUILT, TABLE_PATH, Case, network_classes, render_table

from monai_sre import convert_to_sre, equivariance_error
from monai_sre.utils import GridSymmetry, SREConversionError, SREConversionWarning, grid_symmetries

# generators of the 48 symmetries of the cube (a transposition, a 3-cycle of the axes, one flip): a network that
# commutes with them commutes with all their products; test_all_48_symmetries_3d checks the whole group
GENERATORS_3D = [GridSymmetry((1, 0, 2), ()), GridSymmetry((1, 2, 0), ()), GridSymmetry((0, 1, 2), (0,))]


def _params(cases, dims=(2, 3)):
    return [
        pytest.param(case, d, id=f"{case.name}-{d}d", marks=[pytest.mark.slow] if case.slow else [])
        for case in cases for d in case.dims if d in dims
    ]


EXACT = [case for case in CASES if not case.refused_by]
REFUSED = [case for case in CASES if case.refused_by]


def _convert(case: Case, net: nn.Module) -> nn.Module:
    sre = convert_to_sre(net).eval()
    if case.perturb:
        with torch.no_grad():
            for p in sre.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return sre


def _input(case: Case, spatial_dims: int) -> torch.Tensor:
    return torch.randn(1, case.in_channels, *([case.side] * spatial_dims))


@pytest.mark.parametrize("case, spatial_dims", _params(EXACT))
def test_converted_network_is_exactly_equivariant(case, spatial_dims):
    torch.manual_seed(0)
    net = case.build(spatial_dims).eval()
    sre = _convert(case, net)
    x = _input(case, spatial_dims)
    symmetries = grid_symmetries(2) if spatial_dims == 2 else GENERATORS_3D
    with torch.no_grad():
        assert case.call(sre, x).shape == case.call(net, x).shape
        error = equivariance_error(lambda v: case.call(sre, v), x, symmetries)
        assert error <= 1e-5, (case.name, error)
        if not case.perturb:  # (layers initialised to zero make the original's output constant)
            assert equivariance_error(lambda v: case.call(net, v), x, symmetries[1:4]) > 1e-3


@pytest.mark.slow
@pytest.mark.extended  # the generators above imply the group; this checks the 48 elements one by one
@pytest.mark.parametrize("case, spatial_dims", _params(EXACT, dims=(3,)))
def test_all_48_symmetries_3d(case, spatial_dims):
    torch.manual_seed(0)
    sre = _convert(case, case.build(spatial_dims).eval())
    with torch.no_grad():
        assert equivariance_error(lambda v: case.call(sre, v), _input(case, 3), chunk_size=16) <= 1e-5


@pytest.mark.parametrize("case, spatial_dims", _params(REFUSED))
def test_conversion_names_every_module_that_cannot_be_equivariant(case, spatial_dims):
    torch.manual_seed(0)
    net = case.build(spatial_dims).eval()
    with pytest.raises(SREConversionError) as info:
        convert_to_sre(net)
    problems = info.value.problems
    lines = [f"{name}: {reason}" for name, reason in problems]
    for fragment in case.refused_by:
        assert any(fragment in line for line in lines), (fragment, lines)
    qualified = {name for name, _ in net.named_modules(remove_duplicate=False)} | {type(net).__name__}
    qualified |= {name for name, _ in net.named_parameters(remove_duplicate=False)}
    qualified |= {name for name, _ in net.named_buffers(remove_duplicate=False)}
    assert {name for name, _ in problems} <= qualified
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, report = convert_to_sre(net, strict=False, return_report=True)
    assert report.non_equivariant == problems and not report.equivariant
    assert [w.category for w in caught if issubclass(w.category, SREConversionWarning)] == [SREConversionWarning]


def test_every_network_class_is_walked_or_excused():
    covered = {case.name for case in CASES} | {name for case in CASES for name in case.covers} | set(NOT_BUILT)
    assert set(network_classes()) == covered


def test_docs_table_is_generated_from_these_cases():
    assert TABLE_PATH.read_text() == render_table(), "regenerate it: python tests/utils/monai_network_cases.py"
