"""Peak resident memory of one training run, each tool in a fresh process.

``python -m benchmarks.memory TOOL [--case 3] [--samples 8192]`` builds the
shared data, imports and builds the tool, trains one epoch of the case and
prints one JSON line: the process's peak RSS (the high-water mark, imports
included, since that is what a user's machine pays), the RSS just before
training, and the difference. The default 8,192 rows are about the size of
mnist-10k's training set (25 MiB of float32 features, the same in every tool).
"dialnet" trains on the engine ``fit`` picks (the compiled step loads numba
and LLVM); "numpy path" on the NumPy layers alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

from .cases import CASES, make_data
from .tools import CASE_TOOLS, RUNNERS, Unavailable

MEMORY_CASE = "3"
MEMORY_ROWS, QUICK_ROWS = 8192, 256


def _mib(n_bytes):
    return n_bytes / 2**20


def current_rss_bytes():
    """Resident set size now (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes():
    """This process's peak RSS: ``VmHWM`` on Linux, else ``ru_maxrss``.

    On Linux ``ru_maxrss`` survives fork + exec, so a child started by a big
    parent would report the parent's size; ``VmHWM`` starts afresh with exec.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def measure_here(tool, case_key=MEMORY_CASE, samples=MEMORY_ROWS):
    """Train once in this process and return the memory figures (MiB) as a dict."""
    case = next(c for c in CASES if c.key == case_key)
    n = samples
    X, y = make_data(case, n)
    run = RUNNERS[tool](case, X, y)
    before = current_rss_bytes()
    run(n)
    peak = peak_rss_bytes()
    return {
        "tool": tool,
        "case": case.key,
        "samples": n,
        "peak_mib": round(_mib(peak), 1),
        "before_training_mib": None if before is None else round(_mib(before), 1),
        "training_growth_mib": None if before is None else round(max(0.0, _mib(peak - before)), 1),
    }


def measure_in_subprocess(tool, case_key=MEMORY_CASE, samples=MEMORY_ROWS, timeout=600):
    """Run :func:`measure_here` in a fresh interpreter; None if the tool is not installed."""
    cmd = [sys.executable, "-m", "benchmarks.memory", tool, "--case", case_key, "--samples", str(samples)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=root)
    if done.returncode == 3:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"memory run for {tool} failed:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=CASE_TOOLS)
    parser.add_argument("--case", default=MEMORY_CASE, choices=[c.key for c in CASES if c.kind == "train"])
    parser.add_argument("--samples", type=int, default=MEMORY_ROWS, help=f"training rows (default {MEMORY_ROWS})")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    try:
        result = measure_here(args.tool, args.case, args.samples)
    except Unavailable as exc:
        print(exc, file=sys.stderr)
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
