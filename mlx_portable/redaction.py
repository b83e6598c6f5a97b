"""Secrets out of everything mlx-portable shows: by a variable's name and by what a value looks like.

Why: ``mlx-portable doctor`` output is pasted into public issues, and error
messages that echo an environment variable's value end up in logs.  A name
list alone misses ``..._PASS``, ``..._DSN=postgres://u:pw@h/db``,
``MLX_HOSTFILE=https://user:pw@host/...``, ``CUDA_HOME=/opt/cuda?token=...``
or a token pasted into the wrong variable (``MLX_PORTABLE_BACKEND=hf_...``).
So a value is redacted when its name looks secret (:func:`secret_name`),
and inside any text these parts are replaced by ``<redacted>``
(:func:`redact`):

- the user-info of a URL (``scheme://user:pw@host``) or of ``user:pw@host``;
- the value of a query parameter with a secret-looking name (``?token=...``);
- a token with a known prefix (``hf_``, ``ghp_``, ``github_pat_``, ``sk-``,
  ``xoxb-``, ``glpat-``, ``AKIA``, ...);
- a run of 24 or more letters and digits (``+`` and ``=`` allowed) that
  mixes cases and digits and has high entropy (an API key of an unknown
  kind; a run broken by ``/``, ``-``, ``_`` or ``.`` is a path or a name).

Paths, version strings, host names and dist-info names are left alone.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

__all__ = ["REDACTED", "displayed", "redact", "redact_data", "secret_name"]

REDACTED = "<redacted>"

#: Substrings of a variable name that mark its value as secret.
SECRET_NAME_PARTS: tuple[str, ...] = (
    "TOKEN",
    "KEY",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "CREDS",
    "AUTH",
    "PRIVATE",
    "SESSION",
    "COOKIE",
    "PASS",
    "SIGNATURE",
)
#: Whole words of a name (split at ``_``) that mark it as secret but are too short to match inside words.
SECRET_NAME_WORDS: frozenset[str] = frozenset({"PAT", "DSN", "PWD", "PW", "SIG", "CERT", "JWT", "OTP"})

#: Prefixes of well-known token formats (Hugging Face, GitHub, OpenAI/Stripe, Slack, GitLab, AWS, npm...).
TOKEN_PREFIXES: tuple[str, ...] = (
    "hf_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "pk_live_",
    "xoxa-",
    "xoxb-",
    "xoxe-",
    "xoxp-",
    "xoxr-",
    "xoxs-",
    "xapp-",
    "AKIA",
    "ASIA",
    "npm_",
    "pypi-",
    "dop_v1_",
    "shpat_",
    "AIza",
    "ya29.",
    "eyJ",  # a JSON web token's header
)

_QUERY_SECRET_WORDS = ("token", "key", "secret", "pass", "pwd", "auth", "sig", "cred", "session", "code")

_patterns: list[tuple[re.Pattern[str], str]] | None = None
_long_run: re.Pattern[str] | None = None


def secret_name(name: str) -> bool:
    """Whether a variable called ``name`` holds a secret (by its name alone)."""
    upper = name.upper()
    if any(part in upper for part in SECRET_NAME_PARTS):
        return True
    return any(word in SECRET_NAME_WORDS for word in upper.replace("-", "_").split("_"))


def _compiled() -> list[tuple[re.Pattern[str], str]]:
    global _patterns, _long_run
    if _patterns is None:
        import re  # only when something is shown: not at import

        prefixes = "|".join(re.escape(p) for p in sorted(TOKEN_PREFIXES, key=len, reverse=True))
        _patterns = [
            # scheme://user:password@host -- keep the scheme and the host
            # (the scheme starts where a scheme character does not precede: linear, not quadratic)
            (
                re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/@]+@"),
                r"\1" + REDACTED + "@",
            ),
            # user:password@host without a scheme (MLX_JACCL_COORDINATOR=user:pw@host:port)
            (re.compile(r"(^|[\s,;=(\[\"'])[^\s:/@,;=\"']+:[^\s/@,;\"']+@"), r"\1" + REDACTED + "@"),
            # ?token=... &key=...
            (
                re.compile(
                    r"([?&;][^=&\s#]*(?:" + "|".join(_QUERY_SECRET_WORDS) + r")[^=&\s#]*=)[^&\s#]+",
                    re.IGNORECASE,
                ),
                r"\1" + REDACTED,
            ),
            # tokens of a known kind
            (re.compile(r"(?<![A-Za-z0-9])(?:" + prefixes + r")[A-Za-z0-9_\-.]{8,}"), REDACTED),
        ]
        _long_run = re.compile(r"[A-Za-z0-9+=]{24,}")
    return _patterns


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _high_entropy(token: str) -> bool:
    """A key of an unknown kind: long, upper and lower case and digits mixed, few repeats."""
    core = token.strip("=+")
    if len(core) < 24:
        return False
    upper = sum(c.isupper() for c in core)
    lower = sum(c.islower() for c in core)
    digits = sum(c.isdigit() for c in core)
    if min(upper, lower, digits) < 2:
        return False
    return _entropy(core) >= 3.8


def redact(text: str) -> str:
    """``text`` with URL passwords, secret query values and token-like strings replaced by ``<redacted>``."""
    if not isinstance(text, str) or not text:
        return text
    for pattern, replacement in _compiled():
        text = pattern.sub(replacement, text)
    assert _long_run is not None
    return _long_run.sub(lambda m: REDACTED if _high_entropy(m.group(0)) else m.group(0), text)


def displayed(name: str, value: str) -> str:
    """The value of variable ``name`` as shown: all hidden for a secret name, else :func:`redact`."""
    if secret_name(name):
        return f"<redacted, {len(value)} characters>"
    return redact(value)


def redact_data(data: object) -> object:
    """A copy of JSON-like ``data`` with :func:`redact` applied to every string in it (keys included)."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact_data(k) if isinstance(k, str) else k: redact_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v) for v in data]
    return data
