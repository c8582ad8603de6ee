"""Export: SRE layers back to plain PyTorch, for deployment without ``monai_sre``.

:func:`export_to_conv` replaces every SRE layer of a network by plain PyTorch with the same outputs:

===============================================  ==========================================================
SRE layer                                        plain equivalent
===============================================  ==========================================================
``SREConv``, ``SREConvTranspose``, ``SREEvenConv``  ``torch.nn.ConvNd`` / ``ConvTransposeNd`` holding the
                                                 expanded (symmetric) kernel
``SREPool``, ``SREAvgPool``                      a ``torch.fx.GraphModule`` named ``SymmetricPool``: size
                                                 arithmetic on ``x.shape``, ``F.pad`` and ``F.*_pool*d``
``GaussianSmoothing``                            a ``torch.fx.GraphModule`` named ``GaussianSmoothing``:
                                                 one depthwise convolution with the fixed kernel
MONAI ``UpCat`` as converted by ``convert_to_sre``  a ``torch.fx.GraphModule`` named ``SymmetricUpCat`` over
                                                 MONAI's own ``upsample`` and ``convs``
===============================================  ==========================================================

The pooling windows of :class:`~monai_sre.blocks.SREPool` are placed from the input size, which no fixed
``torch.nn`` pooling layer does; the ``GraphModule`` keeps that rule for every input size. Its generated code calls
only ``torch`` and ``operator`` functions (and ``int`` on sizes), so the exported network imports nothing from
``monai_sre`` and works with ``torch.jit.script``, ``torch.jit.trace`` and both ONNX exporters. Save it as TorchScript,
ONNX or a state dict: pickling a whole ``GraphModule`` re-traces its code on loading, which ``int`` does not allow.
"""

from __future__ import annotations

import copy
import functools
import operator
from collections.abc import Callable

import torch
import torch.fx
import torch.nn as nn

from monai_sre.blocks.smoothing import GaussianSmoothing
from monai_sre.blocks.sre_conv import SREConvBase
from monai_sre.blocks.sre_even_conv import SREEvenConv
from monai_sre.blocks.sre_pool import SREAvgPool
from monai_sre.blocks.sre_resample import SREPool, symmetric_pool
from monai_sre.utils.convert import _SymmetricUpCat

__all__ = ["SREExportError", "export_to_conv"]


class SREExportError(TypeError):
    """:func:`export_to_conv` met ``monai_sre`` modules with no plain PyTorch equivalent.

    Attributes:
        names: qualified names of those modules in the network.
    """

    def __init__(self, problems: list[tuple[str, nn.Module]]) -> None:
        self.names = [name for name, _ in problems]
        lines = "\n".join(f"  {name}: {type(m).__name__}" for name, m in problems)
        super().__init__(
            f"export_to_conv: {len(problems)} module(s) of monai_sre hold parameters or buffers and have no plain "
            f"PyTorch equivalent:\n{lines}"
        )


class _ChildrenAsLeaves(torch.fx.Tracer):
    """Traces only the root's own ``forward``: every submodule call stays a ``call_module`` node."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return True


class _Function(nn.Module):
    """Root for tracing a function of one tensor (never returned: the trace becomes a ``GraphModule``)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], **buffers: torch.Tensor) -> None:
        super().__init__()
        self.fn = fn
        for name, value in buffers.items():
            self.register_buffer(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _is_size(node: torch.fx.Node) -> bool:
    """``node`` reads one entry of a tensor's shape: ``getitem(getattr(t, "shape"), i)``."""
    if node.op != "call_function" or node.target is not operator.getitem or not isinstance(node.args[1], int):
        return False
    src = node.args[0]
    return isinstance(src, torch.fx.Node) and src.op == "call_function" and src.target is getattr and src.args[1] == "shape"


def _graph(root: nn.Module, class_name: str) -> torch.fx.GraphModule:
    graph = _ChildrenAsLeaves().trace(root)
    for node in list(graph.nodes):
        if node.op in ("placeholder", "output"):  # postponed (string) annotations would reach the code as names
            node.type = torch.Tensor if node.op == "placeholder" else None
        elif _is_size(node):
            # ``int(x.shape[i])``: the TorchScript-based ONNX exporter then records a spatial size as a constant
            # (pooling windows must be constants in ONNX) while the batch axis stays dynamic
            with graph.inserting_after(node):
                as_int = graph.call_function(int, (node,))
            node.replace_all_uses_with(as_int, delete_user_cb=lambda user: user is not as_int)
    plain = torch.fx.Graph()  # a copy made by no tracer: nothing of monai_sre in the module's state
    plain.output(plain.graph_copy(graph, {}))
    gm = torch.fx.GraphModule(root, plain, class_name=class_name)
    gm.train(root.training)
    return gm


def _pool_graph(m: SREPool | SREAvgPool) -> torch.fx.GraphModule:
    if isinstance(m, SREAvgPool):  # the same windows as SREPool(factor, factor, "avg", ceil_mode=True)
        geometry = {"kernel_size": list(m.factor), "stride": list(m.factor), "padding": [0] * m.spatial_dims,
                    "mode": "avg", "ceil_mode": True, "extra_padding": [0] * m.spatial_dims}
    else:
        geometry = {"kernel_size": list(m.kernel_size), "stride": list(m.stride), "padding": list(m.padding),
                    "mode": m.mode, "ceil_mode": m.ceil_mode, "extra_padding": list(m.extra_padding)}
    return _graph(_Function(functools.partial(symmetric_pool, **geometry)), "SymmetricPool")


def _smooth(x: torch.Tensor, kernel: torch.Tensor, padding: list[int]) -> torch.Tensor:
    """:class:`GaussianSmoothing` without its input check: every channel convolved with the fixed kernel."""
    ones = [1] * len(padding)
    flat = x.flatten(0, 1).unsqueeze(1)
    out = torch.convolution(flat, kernel.to(x.dtype), None, ones, padding, ones, False, [0] * len(ones), 1)
    return out.reshape(x.shape)


def _smoothing_graph(m: GaussianSmoothing) -> torch.fx.GraphModule:
    root = _Function(lambda x: x, kernel=m.kernel.clone())
    root.fn = functools.partial(_smooth, kernel=root.kernel, padding=list(m.padding))
    return _graph(root, "GaussianSmoothing")


def _upcat_graph(m: _SymmetricUpCat) -> torch.fx.GraphModule:
    return _graph(m, "SymmetricUpCat")


#: SRE layer type -> its plain equivalent
_EXPORTERS: dict[type, Callable[[nn.Module], nn.Module]] = {
    SREConvBase: lambda m: m.to_plain(),
    SREEvenConv: lambda m: m.to_plain(),
    SREPool: _pool_graph,
    SREAvgPool: _pool_graph,
    GaussianSmoothing: _smoothing_graph,
    _SymmetricUpCat: _upcat_graph,
}


def _exporter(m: nn.Module) -> Callable[[nn.Module], nn.Module] | None:
    return next((_EXPORTERS[c] for c in type(m).__mro__ if c in _EXPORTERS), None)


def _replace(module: nn.Module) -> nn.Module:
    """``module`` with its SRE layers replaced, depth first (children before the module that holds them)."""
    for name, child in list(module.named_children()):
        setattr(module, name, _replace(child))
    fn = _exporter(module)
    return module if fn is None else fn(module)


def export_to_conv(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every SRE layer replaced by plain PyTorch: same outputs, no ``monai_sre``.

    Convolutions (``SREConv``, ``SREConvTranspose``, even-kernel ``SREEvenConv``) become ``torch.nn.ConvNd`` /
    ``ConvTransposeNd`` holding the expanded kernel. Size-dependent layers (``SREPool``, ``SREAvgPool``, the
    symmetric ``UpCat`` of a converted BasicUNet) and ``GaussianSmoothing`` become ``torch.fx.GraphModule`` s whose
    code calls only torch (see the module docstring). Everything else is kept as it is.

    What is guaranteed:

    * the copy holds no SRE layer, and no module of a ``monai_sre`` class that holds parameters or buffers. A
      network made by :func:`~monai_sre.utils.convert.convert_to_sre` from a MONAI or ``torch.nn`` network
      holds only ``torch.nn``, ``torch.fx`` and the original (MONAI) classes; ``monai_sre``'s own networks keep
      their container classes (``SREResNet``, ``SREUNet``, residual blocks), whose forward calls only torch;
    * outputs equal the model's up to float rounding of the same operations (relative 1e-6), at every input size
      the model accepts;
    * the copy works with ``torch.jit.script``, ``torch.jit.trace`` and ``torch.onnx.export`` (TorchScript-based
      and ``dynamo=True``), with a dynamic batch axis.

    Args:
        model: the network (or one layer); it is not modified.

    Returns:
        The plain copy.

    Raises:
        SREExportError: a ``monai_sre`` module with parameters or buffers has no plain equivalent; lists each by
            its qualified name.

    Example::

        >>> plain = export_to_conv(convert_to_sre(UNet(3, 1, 2, channels=(8, 16, 32), strides=(2, 2))).eval())
        >>> {type(m).__module__.split(".")[0] for m in plain.modules()}
        {'monai', 'torch'}
        >>> torch.jit.script(plain).save("model.ts")
    """
    out = _replace(copy.deepcopy(model))
    problems = [
        (name or type(m).__name__, m)
        for name, m in out.named_modules()
        if type(m).__module__.startswith("monai_sre.")
        and (any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)))
    ]
    if problems:
        raise SREExportError(problems)
    return out
