"""Patches: the registry and the built-in shims."""
