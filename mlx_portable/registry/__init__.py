"""The patch registry: Patch, PatchContext, saved originals, the Registry, the built-in list."""
