"""robustkit: adversarial-robustness testing for PyTorch image classifiers.

The heavy parts (torch, pandas) load on first use, so that importing the package, as the pytest
plugin does in every test session, stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robustkit.errors import RobustkitError

__version__ = "0.1.0"
__all__ = ["AuditResult", "RobustkitError", "__version__", "audit"]

if TYPE_CHECKING:
    from robustkit.auditing.engine import audit
    from robustkit.auditing.results import AuditResult


def __getattr__(name: str) -> Any:
    if name == "audit":
        from robustkit.auditing.engine import audit

        return audit
    if name == "AuditResult":
        from robustkit.auditing.results import AuditResult

        return AuditResult
    raise AttributeError(f"module 'robustkit' has no attribute {name!r}")
