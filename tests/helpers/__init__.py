"""What the tests share besides fixtures: child processes, simulated mlx and CUDA, fuzz inputs.

Imported as ``helpers.<module>`` (``tests/`` is on ``sys.path`` through
``tests/conftest.py``); fixtures live in ``tests/conftest.py``.
"""
