"""Models: load classifiers from specs, wrap them as RobustModel, and sanity-check them."""

from robustkit.models.checks import check_classifier
from robustkit.models.loader import apply_checkpoint, load_model, load_state_dict_file
from robustkit.models.wrapper import RobustModel
from robustkit.models.zoo import list_zoo_models, load_zoo_model

__all__ = [
    "RobustModel",
    "apply_checkpoint",
    "check_classifier",
    "list_zoo_models",
    "load_model",
    "load_state_dict_file",
    "load_zoo_model",
]
