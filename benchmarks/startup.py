"""How long ``dialnet --help`` and ``import dialnet`` take, each in a fresh process.

Every figure is a whole process timed from the outside (wall clock,
interpreter start included: that is what a user waits for): ``dialnet
--help``, ``python -c "import dialnet"``, and for scale a bare ``python -c
pass`` and ``python -c "import numpy"`` (the floor for a NumPy program).
``import dialnet`` is also timed inside a fresh interpreter (``import_s``:
the import alone). The contenders take turns (``timing.interleaved``), so a
slow spell on a shared machine falls on all of them; medians over the runs.

``python -m benchmarks.startup --runs 25 --before OLD/src`` (the src folder of another checkout) also times
another checkout of dialnet (its ``src`` put first on ``PYTHONPATH``) in the
same run, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from .timing import interleaved, median

_IMPORT_TIMER = "import time; t = time.perf_counter(); import dialnet; print(time.perf_counter() - t)"


def dialnet_command():
    """The installed ``dialnet`` script next to this interpreter, else ``python -m dialnet.cli``."""
    script = shutil.which("dialnet", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "dialnet.cli"]


def _environment(src=None):
    if src is None:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _run(cmd, env=None):
    def call():
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return call


def _wall(cmd, env=None):
    start = time.perf_counter()
    _run(cmd, env)()
    return time.perf_counter() - start


def _import_alone(env=None):
    out = subprocess.run([sys.executable, "-c", _IMPORT_TIMER], check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def measure(runs=7, before=None, pause=0.05):
    """Medians, in seconds, of the start-up figures (see the module's docstring).

    ``help_s``, ``python_s``, ``numpy_s``, ``import_wall_s`` are whole
    processes; ``import_s`` is ``import dialnet`` alone. With ``before`` (the
    ``src`` folder of another checkout), ``before_help_s``,
    ``before_import_wall_s`` and ``before_import_s`` time that checkout in the
    same rounds.
    """
    help_cmd = dialnet_command() + ["--help"]
    contenders = {
        "help_s": _run(help_cmd),
        "python_s": _run([sys.executable, "-c", "pass"]),
        "numpy_s": _run([sys.executable, "-c", "import numpy"]),
        "import_wall_s": _run([sys.executable, "-c", "import dialnet"]),
    }
    if before is not None:
        env = _environment(before)
        contenders["before_help_s"] = _run(help_cmd, env)
        contenders["before_import_wall_s"] = _run([sys.executable, "-c", "import dialnet"], env)
    times = interleaved(contenders, repeats=runs, pause=pause)  # the first call of each warms the file cache
    result = {name: median(values) for name, values in times.items()}
    result["import_s"] = median([_import_alone() for _ in range(runs)])
    if before is not None:
        result["before_import_s"] = median([_import_alone(_environment(before)) for _ in range(runs)])
    result["runs"] = runs
    return result


def format_result(r):
    numpy_s = r["numpy_s"]
    rows = [("dialnet --help", r["help_s"]), ('python -c "import dialnet"', r["import_wall_s"]),
            ('python -c "import numpy"', numpy_s), ("python -c pass", r["python_s"])]
    if "before_help_s" in r:
        rows[2:2] = [("dialnet --help (before)", r["before_help_s"]),
                     ('python -c "import dialnet" (before)', r["before_import_wall_s"])]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'command':<{width}}  median s  vs import numpy"]
    lines += [f"{name:<{width}}  {s:8.3f}  {s / numpy_s:6.2f}x" for name, s in rows]
    lines.append(f"import dialnet alone (in-process): {r['import_s'] * 1e3:.1f} ms"
                 + (f", before: {r['before_import_s'] * 1e3:.1f} ms" if "before_import_s" in r else ""))
    lines.append(f"medians of {r['runs']} interleaved runs each, {sys.executable}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="timed runs of each command (default: 25)")
    parser.add_argument("--before", metavar="SRC", help="the src folder of another dialnet checkout to time alongside")
    args = parser.parse_args(argv)
    print(format_result(measure(runs=args.runs, before=args.before)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
