"""ManifoldProjectionDefense: classify the projection of the input onto a generator's range, and
the ``manifold:GEN`` spec (``robustkit audit --defense``) that builds one around a classifier."""

from __future__ import annotations

from torch import Tensor, nn

from robustkit.errors import RobustkitError
from robustkit.generative.generators import Generator
from robustkit.generative.projection import ProjectionConfig, project
from robustkit.generative.zoo import resolve_generator
from robustkit.models.wrapper import device_of

DEFENSE_PREFIX = "manifold:"


class ManifoldProjectionDefense(nn.Module):
    """Defense-GAN (Samangouei et al. 2018): ``classifier(G(z*))`` with z* the projection of x.

    Randomized: each forward draws fresh restarts (so attack it with EOT). The backward is BPDA
    (Athalye et al. 2018): the projection, which has no useful gradient, is treated as the
    identity, so a gradient-based attack on this module is the BPDA attack.
    """

    is_randomized = True

    def __init__(
        self,
        classifier: nn.Module,
        generator: Generator,
        *,
        steps: int = 200,
        restarts: int = 10,
        lr: float = 0.1,
        optimizer: str = "adam",
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.generator = generator.eval().requires_grad_(False)
        self.projection = ProjectionConfig(
            steps=steps, restarts=restarts, lr=lr, optimizer=optimizer
        )
        name = getattr(classifier, "name", type(classifier).__name__)
        self.name = f"manifold({name})"
        self.input_shape = generator.output_shape
        self.num_classes = getattr(classifier, "num_classes", None)

    def project(self, x: Tensor) -> Tensor:
        """The closest generated image to each input (no gradient)."""
        return project(self.generator, x, self.projection).x_proj

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(straight_through(x, self.project(x)))

    def train(self, mode: bool = True) -> ManifoldProjectionDefense:
        """The generator stays in eval mode: its batch norm must not track attack inputs."""
        super().train(mode)
        self.generator.eval()
        return self


def straight_through(x: Tensor, x_proj: Tensor) -> Tensor:
    """``x_proj`` in the forward pass, identity (d/dx = 1) in the backward pass: BPDA."""
    return x + (x_proj - x).detach()


def load_defense(
    spec: str,
    classifier: nn.Module,
    *,
    steps: int = 200,
    restarts: int = 10,
    lr: float = 0.1,
) -> ManifoldProjectionDefense:
    """``manifold:GEN.pt`` or ``manifold:zoo:NAME`` around ``classifier``."""
    if not spec.startswith(DEFENSE_PREFIX) or spec == DEFENSE_PREFIX:
        raise RobustkitError(
            f"unknown defense {spec!r}: use manifold:GEN.pt or manifold:zoo:mnist-dcgan"
        )
    source = spec[len(DEFENSE_PREFIX) :]
    generator = resolve_generator(source, device=device_of(classifier))
    shape = getattr(classifier, "input_shape", None)
    if shape is not None and tuple(shape) != generator.output_shape:
        raise RobustkitError(
            f"generator {source} makes {generator.output_shape} images but the classifier takes "
            f"{tuple(shape)}: use a generator trained on the classifier's dataset"
        )
    return ManifoldProjectionDefense(classifier, generator, steps=steps, restarts=restarts, lr=lr)
