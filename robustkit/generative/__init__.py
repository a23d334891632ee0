"""Generative models: GAN generators, projection onto their range, GAN training, generator zoo."""
