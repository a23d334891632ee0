"""GAN-based manifold-projection defense: generators, projection, training and the defense."""
