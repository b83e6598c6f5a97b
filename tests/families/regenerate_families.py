"""Rewrite expected_families.json: what every tiny model family produces on mlx 0.32.4.

Run deliberately, with mlx 0.32.4 and mlx-lm 0.32.2, only when the
families, their configs or the harness change (never to make a failing
matrix pass)::

    python tests/families/regenerate_families.py            # every family
    python tests/families/regenerate_families.py OUT.json   # another file (a sweep on another mlx)
    python tests/families/regenerate_families.py OUT.json llama gpt_oss   # update those families only

Each case holds the greedy tokens and the ``batch_generate`` token ids, or
the error mlx 0.32.4 itself raises (then the case is recorded, not tested).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

EXPECTED = HERE / "expected_families.json"


def main() -> None:
    import mlx_portable

    mlx_portable.activate()
    import family_configs
    import harness
    import mlx.core as mx

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else EXPECTED
    if target == EXPECTED and mx.__version__ != "0.32.4":
        sys.exit(f"expected_families.json is mlx 0.32.4's: this is mlx {mx.__version__}; pass another path")
    wanted = sys.argv[2:] or [f for f in family_configs.families() if f not in family_configs.SKIPPED]
    cases: dict[str, dict[str, object]] = {}
    if len(sys.argv) > 2 and target.exists():  # some families: update the file in place
        cases = json.loads(target.read_text(encoding="utf-8"))["cases"]
    start = time.perf_counter()
    for family in wanted:
        cases[family] = {variant: harness.run_case(family, variant) for variant in harness.VARIANTS}
        print(family, flush=True)
    data = {
        "generated_with_mlx": mx.__version__,
        "seconds": round(time.perf_counter() - start, 1),
        "skipped": family_configs.SKIPPED,
        "cases": dict(sorted(cases.items())),
    }
    target.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
