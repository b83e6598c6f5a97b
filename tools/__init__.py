"""Maintainer tools (API diff, compatibility table, doc samples), run from a checkout; not in the wheel."""
