"""Pure-MLX stand-ins for mlx-lm's Metal-only kernels.

Each module holds the computation one group of Metal kernels performs,
written with ordinary mlx operations so that it runs on every device mlx
has (CPU, CUDA, and Metal with the CPU as default device).  They follow the
kernels' arithmetic (float32 accumulation, where the kernel rounds to the
input dtype) so that results match the Metal path to the dtype's precision.

These modules import ``mlx.core`` at the top: they are imported only by the
deferred patches in ``mlx_portable.patches.mlx_lm.kernels_*``, which run after
mlx-lm (and hence mlx) has been imported.
"""
