"""Models: load classifiers from specs, wrap them as RobustModel, and sanity-check them."""

from robustkit.models.checks import check_classifier, check_deterministic, is_randomized
from robustkit.models.loader import apply_checkpoint, load_model, load_state_dict_file
from robustkit.models.wrapper import RobustModel
from robustkit.models.zoo import list_zoo_models, load_zoo_model

__all__ = [
    "RobustModel",
    "apply_checkpoint",
    "check_classifier",
    "check_deterministic",
    "is_randomized",
    "list_zoo_models",
    "load_model",
    "load_state_dict_file",
    "load_zoo_model",
]
