"""ManifoldProjectionDefense: classify the projection of the input onto a generator's range."""

from __future__ import annotations

from torch import Tensor, nn

from robustkit.generative.generators import Generator
from robustkit.generative.projection import ProjectionConfig, project


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
