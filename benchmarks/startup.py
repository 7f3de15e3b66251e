"""How long ``dialnet --help`` and ``import dialnet`` take, each in a fresh process.

``dialnet --help`` is timed as a whole process from the outside (wall
clock, interpreter start included: that is what a user waits for), next to
a bare ``python -c pass`` and ``python -c "import numpy"`` for scale (the
second is the floor for a NumPy program). ``import dialnet`` is timed inside
a fresh interpreter, so it is the import alone. Medians over the runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from .timing import median

_IMPORT_TIMER = "import time; t = time.perf_counter(); import dialnet; print(time.perf_counter() - t)"


def dialnet_command():
    """The installed ``dialnet`` script next to this interpreter, else ``python -m dialnet.cli``."""
    script = shutil.which("dialnet", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "dialnet.cli"]


def _wall(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs=7):
    """Median seconds for ``dialnet --help``, bare ``python``, ``python -c "import numpy"`` and ``import dialnet``."""
    help_cmd = dialnet_command() + ["--help"]
    _wall(help_cmd)  # warm the file cache
    help_s, python_s, numpy_s, import_s = [], [], [], []
    for _ in range(runs):
        help_s.append(_wall(help_cmd))
        python_s.append(_wall([sys.executable, "-c", "pass"]))
        numpy_s.append(_wall([sys.executable, "-c", "import numpy"]))
        out = subprocess.run([sys.executable, "-c", _IMPORT_TIMER], check=True, capture_output=True, text=True)
        import_s.append(float(out.stdout.strip().splitlines()[-1]))
    return {"help_s": median(help_s), "python_s": median(python_s), "numpy_s": median(numpy_s),
            "import_s": median(import_s), "runs": runs}
