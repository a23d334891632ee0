"""Common corruptions (Hendrycks & Dietterich 2019): 15 corruptions x 5 severities, batched in
torch on the images' device, with the CIFAR-10-C and ImageNet-C (imagecorruptions) tables."""

from robustkit.corruptions.base import (
    SEVERITIES,
    check_severities,
    corrupt,
    list_corruptions,
    parse_corruptions,
)

__all__ = ["SEVERITIES", "check_severities", "corrupt", "list_corruptions", "parse_corruptions"]
