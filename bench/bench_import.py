"""Import and load time: ``import nbchat`` and ``%load_ext nbchat`` against a bare interpreter.

Each figure is the median of ``--runs`` fresh interpreters (subprocesses), the variants
alternating within each run so that the machine's noise hits them alike:

- ``python -c pass`` (the bare interpreter) against ``python -c "import nbchat"``:
  the difference is what importing nbchat adds to a process's start;
- in a fresh IPython ``InteractiveShell``, the time of ``%load_ext nbchat`` itself, and
  against a shell without it, the whole start of both.

It also lists the heavy modules (pypdf, numpy, pandas, httpx, anywidget, ...) present
after ``%load_ext nbchat``: none should be. Target (issue "Benchmarks", item 5):
< 0.3 s.

    python bench/bench_import.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from common import REPO, emit, median, print_table

TARGET_S = 0.3
HEAVY = ["pypdf", "pypdfium2", "openpyxl", "docx", "pptx", "numpy", "pandas", "polars", "httpx",
         "httpx_sse", "anywidget", "ipywidgets", "charset_normalizer", "bs4", "lxml", "fpdf",
         "xllamacpp"]

SHELL = (
    "from IPython.core.interactiveshell import InteractiveShell; "
    "ip = InteractiveShell.instance()"
)
LOAD = f"""
import json, sys, time
{SHELL}
started = time.perf_counter()
ip.run_line_magic("load_ext", "nbchat")
elapsed = time.perf_counter() - started
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"load_s": elapsed, "heavy": heavy}}))
"""
IMPORT = """
import json, time
started = time.perf_counter()
import nbchat
print(json.dumps({"import_s": time.perf_counter() - started}))
"""
VARIANTS = {
    "bare": "pass",
    "import": IMPORT,
    "shell": SHELL,
    "shell_load": LOAD,
}


def run_once(code: str) -> tuple[float, dict[str, Any]]:
    """Wall seconds of a fresh interpreter running ``code``, and the JSON it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    wall = time.perf_counter() - started
    printed = done.stdout.strip().splitlines()
    return wall, (json.loads(printed[-1]) if printed else {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)

    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    import_s: list[float] = []
    load_s: list[float] = []
    heavy: set[str] = set()
    names = list(VARIANTS)
    run_once("pass")  # warm the file cache
    for index in range(args.runs):
        rotated = names[index % len(names):] + names[: index % len(names)]
        for name in rotated:
            wall, printed = run_once(VARIANTS[name])
            walls[name].append(wall)
            if "import_s" in printed:
                import_s.append(printed["import_s"])
            if "load_s" in printed:
                load_s.append(printed["load_s"])
                heavy.update(printed["heavy"])

    med = {name: median(values) for name, values in walls.items()}
    import_added = med["import"] - med["bare"]
    load_added = med["shell_load"] - med["shell"]
    figures = {
        "bare_s": med["bare"],
        "import_wall_s": med["import"],
        "import_added_s": import_added,
        "import_inprocess_s": median(import_s),
        "shell_s": med["shell"],
        "shell_load_s": med["shell_load"],
        "load_added_s": load_added,
        "load_ext_inprocess_s": median(load_s),
        "heavy_modules_after_load": sorted(heavy),
    }
    met = {
        "import": import_added < TARGET_S,
        "load_ext": figures["load_ext_inprocess_s"] < TARGET_S and load_added < TARGET_S,
    }
    ms = 1000.0
    limit = f"< {TARGET_S * ms:.0f}"
    print_table(
        f"import and load, median of {args.runs} fresh interpreters",
        ["figure", "ms", "target", "met"],
        [
            ["python -c pass (bare interpreter)", med["bare"] * ms, "", ""],
            ["python -c 'import nbchat'", med["import"] * ms, "", ""],
            ["  import nbchat adds", import_added * ms, limit, met["import"]],
            ["  import nbchat, timed inside", figures["import_inprocess_s"] * ms, "", ""],
            ["IPython shell", med["shell"] * ms, "", ""],
            ["IPython shell + %load_ext nbchat", med["shell_load"] * ms, "", ""],
            ["  %load_ext nbchat adds", load_added * ms, limit, met["load_ext"]],
            ["  %load_ext nbchat, timed inside", figures["load_ext_inprocess_s"] * ms, limit,
             met["load_ext"]],
        ],
    )
    print("heavy modules loaded by %load_ext nbchat: "
          + (", ".join(figures["heavy_modules_after_load"]) or "none"))
    print()
    emit("import", {"runs": args.runs, "target_s": TARGET_S, **figures, "met": met})
    return 0


if __name__ == "__main__":
    sys.exit(main())
