"""The family sweep's figures on the installed mlx: every case against mlx 0.32.4's tokens.

    python tests/families/sweep_report.py REPORT.json [RAW.json]

``RAW.json`` (optional) is ``regenerate_families.py RAW.json`` run with this
same mlx: its tokens are reused and only the cases whose tokens differ are
run again (teacher-forced, for the tolerance check).  Prints one line per
family and the totals; writes every case's status and reason to REPORT.json.
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    import mlx_portable

    mlx_portable.activate()
    import harness
    import mlx.core as mx

    expected = json.loads((HERE / "expected_families.json").read_text(encoding="utf-8"))["cases"]
    raw = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))["cases"] if len(sys.argv) > 2 else {}
    report: dict[str, dict[str, list[str]]] = {}
    totals: collections.Counter[str] = collections.Counter()
    for family, variants in expected.items():
        report[family] = {}
        for variant, want in variants.items():
            got = raw.get(family, {}).get(variant) or harness.run_case(family, variant)
            try:
                status, why = harness.compare(family, variant, want, got)
            except Exception as exc:  # the tolerance check itself failed to run
                status, why = "fail", f"tolerance check: {type(exc).__name__}: {exc}"
            report[family][variant] = [status, why]
            totals[status] += 1
        print(family, {v: s for v, (s, _) in report[family].items()}, flush=True)
    print(f"mlx {mx.__version__}: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    Path(sys.argv[1]).write_text(
        json.dumps({"mlx": mx.__version__, "totals": dict(totals), "cases": report}, indent=1) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
