"""Pure-MLX stand-ins for kernels and operations an mlx version or backend lacks.

Each module holds one computation written with ordinary mlx operations so
that it runs on every device mlx has: mlx-lm's Metal-only kernels
(``bitlinear``, ``muse_kernels``, ``gated_delta``, ``losses``), and what older
mlx lacks or gets wrong (``rope``, ``fp8``, ``fp_quantize``, ``quantize_api``,
``quantized_layers``).  The kernel stand-ins follow the kernels' arithmetic
(float32 accumulation, where the kernel rounds to the input dtype) so that
results match the Metal path to the dtype's precision.

These modules import ``mlx.core`` at the top: only the shims in
:mod:`mlx_portable.patches` import them, inside ``check``/``apply``, once mlx
is loaded.
"""
