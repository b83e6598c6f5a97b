"""``python -m tools.apidiff``: record, tabulate and check mlx's public surface.

    python -m tools.apidiff snapshot [--write]     # this mlx's surface (JSON)
    python -m tools.apidiff table [--write PATH]   # docs/api-diff.md
    python -m tools.apidiff consumers --scan LABEL=DIR ... [--write]
    python -m tools.apidiff check                  # consumer uses missing here
    python -m tools.apidiff behaviour [--record]   # ops compared with mlx 0.32.4

``snapshot`` records mlx as shipped: it runs itself in a child interpreter
with ``MLX_PORTABLE=0`` so that no shim adds names to what it records.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from .consumers import CONSUMERS_PATH, load_consumers, merge, scan_package
from .history import dump_snapshot, snapshot_path


def _snapshot(args: argparse.Namespace) -> int:
    if os.environ.get("MLX_PORTABLE") != "0":
        env = {**os.environ, "MLX_PORTABLE": "0"}
        argv = [sys.executable, "-m", "tools.apidiff", "snapshot"]
        return subprocess.run(argv + (["--write"] if args.write else []), env=env, check=False).returncode
    from importlib.metadata import version

    from .surface import collect_surface

    mlx_version = version("mlx")
    text = dump_snapshot(mlx_version, collect_surface())
    if args.write:
        path = snapshot_path(mlx_version)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    else:
        sys.stdout.write(text)
    return 0


def _table(args: argparse.Namespace) -> int:
    from .table import render_table

    text = render_table()
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")
    else:
        sys.stdout.write(text)
    return 0


def _consumers(args: argparse.Namespace) -> int:
    record: dict[str, list[str]] = load_consumers() if CONSUMERS_PATH.exists() else {}
    for spec in args.scan:
        label, sep, directory = spec.partition("=")
        if not sep or not Path(directory).is_dir():
            print(f"--scan wants LABEL=DIR with an existing package directory, got {spec!r}", file=sys.stderr)
            return 2
        # Replace what an earlier scan recorded under this label.
        for key in list(record):
            record[key] = [u for u in record[key] if u != label]
            if not record[key]:
                del record[key]
        merge(record, label, scan_package(directory))
    text = json.dumps({"uses": dict(sorted(record.items()))}, indent=0, sort_keys=True) + "\n"
    if args.write:
        CONSUMERS_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {CONSUMERS_PATH} ({len(record)} keys)")
    else:
        sys.stdout.write(text)
    return 0


def _behaviour(args: argparse.Namespace) -> int:
    from importlib.metadata import version

    from . import behaviour

    mlx_version = version("mlx")
    # The children activate mlx-portable through the hook below unless MLX_PORTABLE=0.
    mode = "plain" if os.environ.get("MLX_PORTABLE") == "0" else "activated"
    results = behaviour.run_isolated()
    if args.write_reference:
        if mlx_version != "0.32.4":
            print(f"the reference comes from mlx 0.32.4, this is mlx {mlx_version}", file=sys.stderr)
            return 2
        behaviour.save_reference(results)
        print(f"wrote {behaviour.REFERENCE_PATH} ({len(results)} results)")
        return 0
    findings = behaviour.compare(results, behaviour.load_reference())
    if args.record:
        path = behaviour.FINDINGS_PATH
        record = behaviour.load_findings() if path.exists() else {}
        record.setdefault(mlx_version, {})[mode] = dict(sorted(findings.items()))
        ordered = dict(sorted(record.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]))
        path.write_text(json.dumps(ordered, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    for key, what in sorted(findings.items()):
        print(f"{key}: {what}")
    print(f"mlx {mlx_version} ({mode}): {len(results)} results, {len(findings)} findings")
    return 0


def _check(_args: argparse.Namespace) -> int:
    from .check import missing_here

    problems = missing_here()
    for key, verdict in problems:
        print(f"{key}: {verdict}")
    print(
        f"{len(problems)} consumer uses missing and not accounted for" if problems else "all consumer uses ok"
    )
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.apidiff", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("snapshot", help="record this mlx's public surface")
    p.add_argument("--write", action="store_true", help="write the checked-in snapshot for this mlx")
    p.set_defaults(run=_snapshot)
    p = sub.add_parser("table", help="render docs/api-diff.md")
    p.add_argument("--write", metavar="PATH", help="write the table to PATH")
    p.set_defaults(run=_table)
    p = sub.add_parser("consumers", help="scan consumer packages' mlx uses")
    p.add_argument(
        "--scan", action="append", default=[], metavar="LABEL=DIR", help='e.g. "mlx-lm 0.24.1=/path/mlx_lm"'
    )
    p.add_argument("--write", action="store_true", help="update the checked-in consumers.json")
    p.set_defaults(run=_consumers)
    p = sub.add_parser("behaviour", help="run the behaviour sweep and compare with mlx 0.32.4")
    p.add_argument("--write-reference", action="store_true", help="(mlx 0.32.4) write the reference")
    p.add_argument("--record", action="store_true", help="record this mlx's findings (MLX_PORTABLE=0: plain)")
    p.set_defaults(run=_behaviour)
    p = sub.add_parser("check", help="activate, then list consumer uses this mlx lacks")
    p.set_defaults(run=_check)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
