"""One place that imports ``mlx.core``.

Everything in mlx-portable reaches mlx through :func:`core`, so that importing
the package does not import mlx before the CUDA library preload had its chance
(``cuda_libraries``), and so that the simulated-backend tests can hand in a
fake ``mlx.core`` with the API surface of a given mlx version.
"""

from __future__ import annotations

import sys

from .errors import MlxPortableError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

__all__ = ["MlxUnavailableError", "core", "core_if_loaded", "mlx_version", "set_override"]

_override: Any = None  # a fake mlx.core for simulated-backend tests
#: What :func:`core` last returned (``None`` before): hot paths such as the
#: distributed wrappers read ``_mlx.loaded or _mlx.core()``, an attribute
#: instead of a call (about 0.1 us a call, a few percent of a 4 KiB exchange).
loaded: Any = None


class MlxUnavailableError(MlxPortableError, ImportError):
    """``mlx.core`` is not installed or cannot load; the message says how to fix it.

    An :class:`~mlx_portable.MlxPortableError` (one ``except`` catches all of
    mlx-portable's errors) and an ``ImportError`` (what code that imports mlx
    expects).
    """


def core() -> Any:
    """Return ``mlx.core``, importing it on first use."""
    global loaded
    if _override is not None:
        return _override
    mod = sys.modules.get("mlx.core")
    if mod is not None:
        loaded = mod
        return mod
    try:
        import mlx.core as mx
    except MlxUnavailableError:
        raise
    except ImportError as exc:
        from .install_hint import explain_import_failure

        raise MlxUnavailableError(explain_import_failure(exc)) from exc
    except (OSError, RuntimeError) as exc:
        # A broken install: a library that cannot be opened, or a CUDA runtime
        # that fails while mlx.core initialises (a driver too old for it).
        from .install_hint import explain_import_failure

        raise MlxUnavailableError(explain_import_failure(exc)) from exc
    loaded = mx
    return mx


def core_if_loaded() -> ModuleType | None:
    """Return ``mlx.core`` if something already imported it, else ``None``."""
    if _override is not None:
        return _override  # type: ignore[no-any-return]
    return sys.modules.get("mlx.core")


def set_override(fake: Any) -> None:
    """Use ``fake`` in place of ``mlx.core`` (for simulated-backend tests)."""
    global _override, loaded
    _override = fake
    loaded = fake  # None: the next core() finds the real module again


def mlx_version(mx: Any | None = None) -> str:
    """``mlx.core.__version__`` (e.g. ``"0.30.0"``)."""
    mx = core() if mx is None else mx
    return str(getattr(mx, "__version__", "0"))
