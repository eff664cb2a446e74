"""Generators of realistic test data with known truth (wall scenes, latents, image pairs) and test helpers.

Importable by the tests, the benchmarks and users who want to check trackdiag on data like theirs.
Nothing here is imported by the training-loop path.
"""
