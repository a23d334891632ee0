"""robustkit: adversarial-robustness testing for PyTorch image classifiers."""

__version__ = "0.1.0"

from robustkit.errors import RobustkitError
from robustkit.evaluate import audit
from robustkit.results import AuditResult

__all__ = ["AuditResult", "RobustkitError", "__version__", "audit"]
