"""Networks: SREResNet, its named presets and the model registry."""

from .registry import RENAMED, canonical_name, get_model, get_model_builder, list_models, register_model
from .sre_resnet import (
    SRE_RESNET_DEPTHS,
    SREResNet,
    r3d_18,
    resnet18,
    sre_r3d_18,
    sre_r3d_18_fullres,
    sre_r3d_18_strided,
    sre_r3d_18_k5,
    sre_resnet10,
    sre_resnet18,
    sre_resnet34,
    sre_resnet50,
)
from .segmentation_registry import get_segmentation_model, list_segmentation_models, register_segmentation_model
from .sre_unet import SREUNet, sre_unet, unet

__all__ = [
    "RENAMED",
    "SRE_RESNET_DEPTHS",
    "SREResNet",
    "SREUNet",
    "canonical_name",
    "get_model",
    "get_model_builder",
    "get_segmentation_model",
    "list_models",
    "list_segmentation_models",
    "r3d_18",
    "register_model",
    "register_segmentation_model",
    "resnet18",
    "sre_r3d_18",
    "sre_r3d_18_fullres",
    "sre_r3d_18_strided",
    "sre_r3d_18_k5",
    "sre_resnet10",
    "sre_resnet18",
    "sre_resnet34",
    "sre_resnet50",
    "sre_unet",
    "unet",
]
