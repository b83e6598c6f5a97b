"""Deferred patches for mlx-lm modules, applied when those modules are imported."""
