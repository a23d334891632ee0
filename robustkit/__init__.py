"""robustkit: adversarial-robustness testing for PyTorch image classifiers."""

__version__ = "0.1.0"

from robustkit.errors import RobustkitError  # noqa: E402
from robustkit.evaluate import audit  # noqa: E402
from robustkit.results import AuditResult  # noqa: E402

__all__ = ["AuditResult", "RobustkitError", "__version__", "audit"]
