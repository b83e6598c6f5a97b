"""Where the NVIDIA pieces mlx's CUDA backend needs live, and how to load them.

- :mod:`.layout`: installed backend package, ``nvidia/*/lib`` folders and CUDA
  header folders of pip wheels anywhere on ``sys.path`` (cheap: ``os`` only,
  it runs at ``import mlx_portable``);
- :mod:`.elf`: the dynamic section of a shared object (needed libraries, RPATH);
- :mod:`.plan`: which NVIDIA libraries the dynamic loader would not find, in
  dependency order;
- :mod:`.preload`: loading them with ``RTLD_GLOBAL`` before ``mlx.core``;
- :mod:`.headers`: mlx's own CUDA header search, and the ``CUDA_HOME`` to set;
- :mod:`.diagnose`: error texts that name the package and the command.

The public entry points are in :mod:`mlx_portable.cuda.runtime`.
"""
