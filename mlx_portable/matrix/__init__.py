"""Matrix environments: one isolated virtual environment per mlx version.

One way to build them, used by ``mlx-portable matrix`` (downstream
projects), by this project's ``noxfile.py`` and therefore by its CI:

- :mod:`.selection`: which mlx versions (the supported range's newest patch
  of each minor by default, or what ``--mlx`` asks for);
- :mod:`.spec`: what one environment holds (mlx and its backend package
  pinned by a constraints file, mlx-lm, the project, extra requirements);
- :mod:`.build`: creating, reusing and installing it with uv (pip when uv
  is absent), and turning installer failures into a clear reason.

Never imported by ``import mlx_portable``.
"""
