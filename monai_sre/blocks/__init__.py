"""SRE convolution modules."""

from .sre_conv import SREConv, SREConvBase, SREConvTranspose

__all__ = ["SREConv", "SREConvBase", "SREConvTranspose"]
