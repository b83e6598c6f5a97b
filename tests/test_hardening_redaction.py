"""Secrets never reach doctor's output or an error message: redacted by name and by value.

Security finding: ``doctor`` redacted only names containing TOKEN, KEY,
SECRET, PASSWORD, PASSWD, CREDENTIAL or AUTH, so ``MLX_PORTABLE_PASS``,
``_CREDS``, ``_PAT``, ``_DSN``, ``_PRIVATE``, ``_SESSION``, ``_COOKIE`` and
``MLX_API_PWD`` were shown in full, as were passwords inside URL-like values
and a token pasted into the wrong variable (echoed by the ``ValueError`` of
``MLX_PORTABLE_BACKEND=hf_...``).  Real ``mlx-portable doctor`` runs in text,
JSON and markdown; each secret is a unique string that must appear nowhere.
These fail on the code before this fix (checked against it).
"""

from __future__ import annotations

import json

import pytest
from helpers.subproc import child_env, run_python

from mlx_portable import redaction

# variable -> (value, the part of it that is secret)
SECRETS: dict[str, tuple[str, str]] = {
    "MLX_PORTABLE_PASS": ("Pa55wordOne", "Pa55wordOne"),
    "MLX_PORTABLE_CREDS": ("credsTwo22", "credsTwo22"),
    "MLX_PORTABLE_PAT": ("patThree33", "patThree33"),
    "MLX_PORTABLE_DSN": ("postgres://dbuser:dbPw0rdFour@db.example/prod", "dbPw0rdFour"),
    "MLX_PORTABLE_PRIVATE": ("privFive55", "privFive55"),
    "MLX_PORTABLE_SESSION": ("sessSix66", "sessSix66"),
    "MLX_PORTABLE_COOKIE": ("cookieSeven77", "cookieSeven77"),
    "MLX_API_PWD": ("pwdEight88", "pwdEight88"),
    "MLX_HOSTFILE": ("https://alice:hostPwNine99@hosts.example/hosts.json", "hostPwNine99"),
    "MLX_JACCL_COORDINATOR": ("bob:coordPwTen10@10.0.0.1:5000", "coordPwTen10"),
    "CUDA_HOME": ("/opt/cuda?token=cudaTokEleven11", "cudaTokEleven11"),
    "MLX_PORTABLE_BACKEND": ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz123456", "AbCdEfGhIjKlMnOpQrStUvWxYz123456"),
    "MLX_SOMETHING": ("ghp_1234567890abcdefABCDEF1234567890abcd", "1234567890abcdefABCDEF1234567890abcd"),
    "MLX_OTHER": ("AbCdEfGh1234IjKlMnOp5678QrStUv", "AbCdEfGh1234IjKlMnOp5678QrStUv"),
}


@pytest.mark.parametrize("form", [[], ["--json"], ["--markdown"], ["--verbose"]])
@pytest.mark.slow_every_mlx
def test_doctor_shows_no_secret(form: list[str]) -> None:
    env = child_env(**{name: value for name, (value, _) in SECRETS.items()})
    done = run_python(None, "doctor", *form, module="mlx_portable", env=env, timeout=240)
    everything = done.stdout + done.stderr
    assert "Traceback" not in everything, everything[-3000:]
    leaked = [name for name, (_, secret) in SECRETS.items() if secret in everything]
    assert not leaked, f"doctor {' '.join(form)} showed the secrets of {leaked}"
    if form == ["--json"]:
        data = json.loads(done.stdout)
        names = {e["name"] for e in data["environment"]}
        assert "MLX_PORTABLE_PASS" in names and "MLX_HOSTFILE" in names  # still listed, value hidden
        shown = {e["name"]: e["value"] for e in data["environment"]}
        assert shown["MLX_HOSTFILE"] == "https://<redacted>@hosts.example/hosts.json"


def test_error_message_echoing_a_variable_redacts_its_value() -> None:
    token = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz123456"
    code = (
        "import mlx_portable\ntry:\n    mlx_portable.activate()\n"
        "except ValueError as exc:\n    print('ERR', exc)\n"
    )
    done = run_python(code, env=child_env(MLX_PORTABLE_BACKEND=token), combine=True)
    assert "ERR MLX_PORTABLE_BACKEND=" in done.stdout, done.stdout
    assert token[3:] not in done.stdout, done.stdout  # neither the warning at import nor the error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:pw@h/db", "postgres://<redacted>@h/db"),
        ("user:pw@10.0.0.1:5000", "<redacted>@10.0.0.1:5000"),
        ("/opt/cuda?token=abc&x=1", "/opt/cuda?token=<redacted>&x=1"),
        ("cuda,hf_abcdefghijkl", "cuda,<redacted>"),
        ("xoxb-1234-5678-abcdefgh", "<redacted>"),
        ("sk-proj-abcdefgh12345678", "<redacted>"),
        # left alone: paths, hosts, versions, names
        ("/usr/local/cuda-12.4/lib64", "/usr/local/cuda-12.4/lib64"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("10.0.0.1:5000", "10.0.0.1:5000"),
        ("nvidia_cuda_nvrtc_cu12-12.9.86.dist-info", "nvidia_cuda_nvrtc_cu12-12.9.86.dist-info"),
        ("mlx-community/Qwen2.5-Coder-32B-Instruct-4bit", "mlx-community/Qwen2.5-Coder-32B-Instruct-4bit"),
        ("0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567"),
    ],
)
def test_redact_by_value(text: str, expected: str) -> None:
    assert redaction.redact(text) == expected


@pytest.mark.parametrize(
    "name", ["MLX_PORTABLE_PASS", "X_CREDS", "X_PAT", "X_DSN", "MLX_API_PWD", "X_COOKIE"]
)
def test_secret_names(name: str) -> None:
    assert redaction.secret_name(name)


@pytest.mark.parametrize("name", ["CUDA_PATH", "LD_LIBRARY_PATH", "MLX_HOSTFILE", "MLX_PORTABLE_BACKEND"])
def test_ordinary_names(name: str) -> None:
    assert not redaction.secret_name(name)
