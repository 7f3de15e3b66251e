"""The benchmark command runs and prints its table (no speed is ever asserted here).

That the fast paths it measures compute exactly what the plain formulas
compute is tested with the core (tests/core/test_core.py, tests/train/test_optimizers.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # `benchmarks` is a top-level folder, not an installed package

from benchmarks import accuracy, memory, run  # noqa: E402
from benchmarks.cases import CASES  # noqa: E402

# ------------------------------------------------------------ the command


def test_quick_run_prints_the_table_for_every_case(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert "samples per second (median)" in text
    for case in CASES:
        assert f"{case.key}. {case.title}" in text
    assert "of this run's float32 matmul peak" in text and "% of peak" in text
    assert "dialnet --help:" in text and "import dialnet:" in text
    report = json.loads(out.read_text())
    assert [r["case"] for r in report["cases"]] == [c.key for c in CASES]
    for r in report["cases"]:
        assert r["samples_per_s"]["dialnet"] > 0
        case = next(c for c in CASES if c.key == r["case"])
        assert ("peak" in r) == case.against_peak == (case.kind == "train")  # every training case against the peak
    assert report["startup"]["numpy_s"] > 0 and report["date"]


def test_unknown_section_is_refused_by_the_command():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--sections", "speed"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown speed" in done.stderr


def test_flops_per_training_sample_counts_each_matrix_product():
    case4 = next(c for c in CASES if c.key == "4")
    # forward X@W and dW = X.T@dZ for 784x1024, 1024x1024, 1024x10; dX = dZ@W.T for the last two
    forward = 784 * 1024 + 1024 * 1024 + 1024 * 10
    assert case4.train_flops_per_sample() == 2 * (forward + forward + 1024 * 1024 + 1024 * 10)


def test_targets_are_checked_against_the_measured_ratios():
    report = {"cases": [{"case": "1", "samples_per_s": {"dialnet": 700.0, "torch": 100.0}},
                        {"case": "3", "samples_per_s": {"dialnet": 140.0, "torch": 100.0}}],
              "startup": {"help_s": 0.5, "numpy_s": 0.1}}
    checks = {name: (value, met) for name, value, met in run.check_targets(report)}
    assert checks["case 1: dialnet >= 8x torch"] == ("7.00x", False)
    assert checks["case 3: dialnet >= 1.5x torch"] == ("1.40x", False)
    assert checks['dialnet --help <= 1.3x `python -c "import numpy"`'] == ("5.00x", False)
    report["cases"][0]["samples_per_s"]["dialnet"] = 900.0
    assert ("case 1: dialnet >= 8x torch", "9.00x", True) in run.check_targets(report)


def test_memory_probe_trains_and_reports_its_figures():
    result = memory.measure_here("dialnet", samples=256)
    assert (result["tool"], result["case"], result["samples"]) == ("dialnet", memory.MEMORY_CASE, 256)
    assert result["peak_mib"] > 0 and result["training_growth_mib"] >= 0


PROBE = """
import numpy as np
from benchmarks import memory
before = memory.peak_rss_bytes()
block = np.ones(2**23)  # 64 MiB, every page written: resident
print(before, memory.current_rss_bytes(), memory.peak_rss_bytes(), float(block[-1]))
"""


def test_peak_rss_probe_sees_64_mib_the_process_touched():
    # a fresh interpreter, so the peak before the block is the small one of a bare import
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    before, current, peak = (int(float(v)) for v in done.stdout.split()[:3])
    block = 2**26
    assert current >= block and peak >= current, "the resident size must count the block"
    assert peak - before >= 0.9 * block, f"the peak grew by {(peak - before) / 2**20:.1f} MiB for a 64 MiB block"


def test_one_pixel_shift_moves_every_pixel_and_fills_zeros():
    image = np.arange(1, 10, dtype=np.float32).reshape(1, 9)  # a 3x3 picture
    right = accuracy.shifted(image, 1, 0, side=3).reshape(3, 3)
    assert right.tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    up = accuracy.shifted(image, 0, -1, side=3).reshape(3, 3)
    assert up.tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
    X, y = accuracy.with_shifts(image, np.array([3]), side=3)
    assert X.shape == (5, 9) and y.tolist() == [3] * 5


# ----------------------------------------------------------------- the GPU


def test_gpu_section_says_clearly_when_there_is_no_gpu(tmp_path):
    from benchmarks import gpu  # noqa: PLC0415

    ok, about = gpu.gpu_status()
    if ok:
        import pytest  # noqa: PLC0415

        pytest.skip(f"a GPU is here ({about}): the section measures instead")
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--sections", "gpu", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gpu: no GPU measured here:" in done.stdout
    assert json.loads(out.read_text())["gpu"]["available"] is False


def test_gpu_section_measures_and_compares_with_both_sides_on_the_cpu():
    """The measuring code, run with the CPU standing in for the GPU: same gradients exactly, every figure printed."""
    from benchmarks import gpu  # noqa: PLC0415

    report = gpu.measure(quick=True, devices={"cpu": "cpu", "gpu": "cpu"}, status=lambda: (True, "the CPU twice"))
    for d in report["gradients"].values():
        assert d["max_relative_difference"] == 0.0 and d["within"]
    assert report["wide"]["gpu"] > 0 and report["wide"]["cpu"] > 0
    assert {(r["device"], r["batch"]) for r in report["mnist"]["runs"]} == {(s, b) for s in ("cpu", "gpu") for b in (64, 256)}
    text = gpu.format_report(report)
    assert "gradients GPU vs CPU (float32" in text and "samples/s" in text and "mnist-10k" in text


def test_update_candidates_compute_the_same_adam_step():
    """Every candidate of `python -m benchmarks.update` is the same Adam step (or it would time other work)."""
    from benchmarks import update

    runs = update.candidates(1001)
    assert {"numpy", "numpy, 2 threads"} <= set(runs)
    for fn, _ in runs.values():
        fn()
    reference = runs["numpy"][1]
    for name, (_, dials) in runs.items():
        np.testing.assert_allclose(dials, reference, rtol=1e-5, atol=1e-7, err_msg=name)
    timings = update.measure(n=2000, repeats=1)
    assert set(timings) == set(runs) and all(a > 0 and b > 0 for a, b in timings.values())
