"""SRE convolution modules."""

from .sre_conv import (
    ALGORITHMS,
    SREConv,
    SREConvBase,
    SREConvTranspose,
    set_algorithm,
)
from .sre_even_conv import SREEvenConv, distance_bands
from .sre_pool import SREAvgPool
from .sre_resample import SizeDependentLayer, SREPool, symmetric_resize, symmetric_windows, traced_for_its_size
from .smoothing import GaussianSmoothing
from .sre_resblock import SREBasicBlock, SREBottleneck
from .timing import time_calls

__all__ = [
    "ALGORITHMS",
    "set_algorithm",
    "distance_bands",
    "symmetric_resize",
    "traced_for_its_size",
    "symmetric_windows",
    "time_calls",
    "SREEvenConv",
    "SREPool",
    "SizeDependentLayer",
    "GaussianSmoothing",
    "SREAvgPool", "SREBasicBlock", "SREBottleneck", "SREConv", "SREConvBase", "SREConvTranspose"]
