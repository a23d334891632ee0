"""Transfer targets from scikit-learn: classical classifiers on flattened pixels, wrapped as models.

Logistic regression, linear SVM, decision tree and kNN are trained by robustkit on a seeded
subset of a training split and wrapped through ART's scikit-learn estimators. Each becomes a
RobustModel that takes [0, 1] pixel tensors, so it can be a transfer target; logistic regression
and the linear SVM also pass gradients (ART's ``class_gradient``) back to an attack, so they can
be sources.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import RobustModel
from robustkit.transfer.matrix import data_tensors

log = logging.getLogger(__name__)

PREFIX = "sklearn:"
_MIN_PROB = 1e-6  # floor before the log, so hard 0/1 votes still give finite logits


@dataclass(frozen=True)
class _Kind:
    build: Callable[[int], Any]  # seed -> unfitted scikit-learn estimator
    differentiable: bool
    description: str


def _logreg(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    # A loose tolerance: lbfgs stops after ~10 iterations instead of ~100, for ~0.5 pp accuracy.
    return LogisticRegression(C=0.05, tol=1e-2, max_iter=100, random_state=seed)


def _svm(seed: int) -> Any:
    from sklearn.svm import LinearSVC

    return LinearSVC(C=0.05, random_state=seed)


def _tree(seed: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(random_state=seed)


def _knn(seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5)


KINDS: dict[str, _Kind] = {
    "logreg": _Kind(_logreg, True, "multinomial logistic regression (log-probabilities)"),
    "svm": _Kind(_svm, True, "linear SVM, one-vs-rest (decision scores)"),
    "tree": _Kind(_tree, False, "decision tree (log of leaf class frequencies)"),
    "knn": _Kind(_knn, False, "5-nearest neighbours (log of vote shares)"),
}


class SklearnClassifier(nn.Module):
    """An ART scikit-learn estimator as a module: flattened pixels in, logits out.

    The logits are what ART differentiates: log-probabilities for logistic regression, decision
    scores for the SVM; for the tree and kNN, the log of the predicted class frequencies.
    """

    def __init__(self, estimator: Any, *, kind: str) -> None:
        super().__init__()
        self.estimator = estimator
        self.kind = kind
        self.differentiable = KINDS[kind].differentiable

    def scores(self, flat: np.ndarray) -> np.ndarray:
        """Per-class logits for flattened inputs."""
        model = self.estimator.model
        if self.kind == "svm":
            return np.asarray(model.decision_function(flat))
        if self.kind == "logreg":
            return np.asarray(model.predict_log_proba(flat))
        return np.log(np.maximum(self.estimator.predict(flat), _MIN_PROB))

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad and torch.is_grad_enabled():
            if not self.differentiable:
                raise RobustkitError(
                    f"{PREFIX}{self.kind} has no gradients: use it as a target only, "
                    "or attack it with a decision-based attack"
                )
            return _ArtGradient.apply(x, self)
        return _as_tensor(self.scores(_flat(x)), x)


class _ArtGradient(torch.autograd.Function):
    """Forward through scikit-learn, backward through ART's per-class input gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, classifier: SklearnClassifier) -> Tensor:
        ctx.classifier = classifier
        ctx.save_for_backward(x)
        return _as_tensor(classifier.scores(_flat(x)), x)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        jacobian = ctx.classifier.estimator.class_gradient(_flat(x))  # (batch, classes, pixels)
        grad = np.einsum("nc,ncd->nd", grad_out.detach().cpu().double().numpy(), jacobian)
        return _as_tensor(grad, x).view_as(x), None


def _flat(x: Tensor) -> np.ndarray:
    return x.detach().flatten(1).cpu().double().numpy()


def _as_tensor(values: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(values)).to(device=like.device, dtype=like.dtype)


def train_sklearn_model(kind: str, x: Tensor, y: Tensor, *, seed: int = 0) -> RobustModel:
    """Fit a ``kind`` classifier (see KINDS) on images ``x`` (N, C, H, W) in [0, 1] and labels."""
    try:
        from art.estimators.classification import SklearnClassifier as ArtSklearnClassifier
    except ImportError:
        raise RobustkitError(
            "scikit-learn models need ART and scikit-learn: pip install 'robustkit[peers]'"
        ) from None

    if kind not in KINDS:
        raise RobustkitError(f"unknown scikit-learn model {kind!r}: choose from {', '.join(KINDS)}")
    if x.dim() != 4 or len(x) != len(y):
        raise RobustkitError(
            f"train {PREFIX}{kind} on images (N, C, H, W) with one label each, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    model = KINDS[kind].build(seed)
    model.fit(_flat(x), y.cpu().numpy())
    log.info("trained %s%s on %d images", PREFIX, kind, len(x))
    estimator = ArtSklearnClassifier(model=model, clip_values=(0.0, 1.0))
    num_classes = len(model.classes_)
    if not np.array_equal(model.classes_, np.arange(num_classes)):
        raise RobustkitError(
            f"{PREFIX}{kind} saw labels {model.classes_.tolist()}: the training subset must "
            "contain every class 0..K-1, so use more --train-samples"
        )
    shape = tuple(int(d) for d in x.shape[1:])
    return RobustModel(
        SklearnClassifier(estimator, kind=kind),
        input_shape=(shape[0], shape[1], shape[2]),
        num_classes=num_classes,
        name=f"{PREFIX}{kind}",
        device="cpu",
    )


def train_sklearn_targets(
    kinds: Sequence[str], dataset: str, *, root: Path | None, num_samples: int, seed: int
) -> dict[str, nn.Module]:
    """Each of ``kinds``, named ``sklearn:KIND``, fit on one seeded subset of the training split."""
    if dataset == "mnist-sample":
        raise RobustkitError(
            "mnist-sample has no training split for --sklearn models: use --dataset mnist "
            "(set ROBUSTKIT_DATA or --data-root)"
        )
    train = load_dataset(dataset, root=root, train=True, num_samples=num_samples, seed=seed)
    x, y = data_tensors(train)
    return {f"{PREFIX}{kind}": train_sklearn_model(kind, x, y, seed=seed) for kind in kinds}
