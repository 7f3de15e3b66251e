"""The GPU section: the same training on CuPy and on NumPy, and the same gradients.

Measured only where CuPy finds a CUDA GPU (``pip install 'dialnet[gpu]'``);
elsewhere the section says so, and why, and measures nothing.

- wide: case 4's net (784-1024-1024-10 ReLU, batch 256, plain SGD, one
  epoch of ``net.fit`` without shuffling), samples/s on each device;
- mnist: the bundled mnist-10k at 28x28 (8,000 training digits), the
  accuracy recipe's 784-256-128-10 ReLU net with Adam(1e-3), ``epochs``
  epochs of batch 64 and of batch 256: seconds and test accuracy on each;
- gradients: one backward pass of the wide net on one batch of digits from
  the same dials on both devices, the largest relative difference
  ``||g_gpu - g_cpu|| / ||g_cpu||`` over the parameter arrays, in float32
  (must be within float32 rounding, 1e-4) and in float64 (1e-10).

The backend is process-wide, so each measurement chooses it and the section
leaves NumPy selected when it ends.
"""

from __future__ import annotations

import time

import numpy as np

from .cases import CASES, LEARNING_RATE, make_data

GRAD_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
DEVICES = {"cpu": "cpu", "gpu": "cuda"}  # what the report calls each side -> the device it runs on
MNIST_SIZES = [784, 256, 128, 10]


def gpu_status():
    """``(True, description)`` when CuPy has a usable GPU, else ``(False, why not)``."""
    from dialnet import backend  # noqa: PLC0415
    from dialnet.errors import DialnetError  # noqa: PLC0415

    try:
        cupy = backend._import_cupy()
    except DialnetError as exc:
        return False, f"{exc.what} ({exc.got})"
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return True, f"{name}, CuPy {cupy.__version__}, {props['totalGlobalMem'] / 2**30:.0f} GiB"


def _synchronize():
    from dialnet import backend  # noqa: PLC0415

    if backend.name == "cupy":
        backend.xp.cuda.runtime.deviceSynchronize()


def _timed(fn, repeats):
    """Median seconds of ``repeats`` calls after one untimed warm-up (device synchronized around each)."""
    fn()
    _synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _on(device, fn):
    from dialnet import backend  # noqa: PLC0415

    backend.use_device(device)
    try:
        return fn()
    finally:
        backend.use("numpy")


def wide_rates(quick=False, repeats=3, devices=DEVICES):
    """Samples/s of case 4 (one epoch of fit, no shuffle) on the CPU and on the GPU."""
    import dialnet as dn  # noqa: PLC0415

    case = next(c for c in CASES if c.key == "4")
    n = case.n_samples(quick)
    X, y = make_data(case, n)
    out = {"sizes": list(case.sizes), "batch": case.batch, "samples": n}
    for side, device in devices.items():
        def run(device=device):
            net = dn.mlp(list(case.sizes), activation="relu", seed=0, device=device)
            opt = dn.SGD(lr=LEARNING_RATE)
            return _timed(lambda: net.fit(X, y, optimizer=opt, epochs=1, batch_size=case.batch, shuffle=False),
                          1 if quick else repeats)
        out[side] = n / _on(device, run)
    return out


def mnist_runs(quick=False, epochs=5, batches=(64, 256), devices=DEVICES):
    """Seconds for ``epochs`` epochs of the recipe on mnist-10k, and the test accuracy, per device and batch size."""
    import dialnet as dn  # noqa: PLC0415

    from .accuracy import load_digits  # noqa: PLC0415

    X, y, X_test, y_test = load_digits()
    if quick:
        X, y, epochs = X[:1024], y[:1024], 1
    out = {"train_rows": int(X.shape[0]), "epochs": epochs, "runs": []}
    for batch in batches:
        for side, device in devices.items():
            def run(device=device, batch=batch):
                net = dn.mlp(MNIST_SIZES, activation="relu", seed=0, device=device)
                start = time.perf_counter()
                net.fit(X, y, optimizer=dn.Adam(lr=1e-3), epochs=epochs, batch_size=batch, seed=0)
                _synchronize()
                seconds = time.perf_counter() - start
                return seconds, float(np.mean(net.predict(X_test) == y_test))
            seconds, acc = _on(device, run)
            out["runs"].append({"device": side, "batch": batch, "seconds": seconds, "test_accuracy": acc})
    return out


def gradient_differences(devices=DEVICES):
    """Largest relative difference of the wide net's gradients, GPU against CPU, in float32 and float64."""
    import dialnet as dn  # noqa: PLC0415
    from dialnet import backend  # noqa: PLC0415

    case = next(c for c in CASES if c.key == "4")
    X, y = make_data(case, case.batch, seed=1)
    out = {}
    for dtype in ("float32", "float64"):
        grads = {}
        for side, device in devices.items():
            def run(device=device, dtype=dtype):
                net = dn.mlp(list(case.sizes), activation="relu", dtype=dtype, seed=0, device=device)
                net.backprop(X, y, "cross_entropy")
                return [np.array(backend.to_numpy(g), dtype=np.float64) for g in net.gradients()]
            grads[side] = _on(device, run)
        worst = max(float(np.linalg.norm(g - c) / max(np.linalg.norm(c), 1e-300))
                    for g, c in zip(grads["gpu"], grads["cpu"]))
        out[dtype] = {"max_relative_difference": worst, "tolerance": GRAD_TOLERANCE[dtype],
                      "within": worst <= GRAD_TOLERANCE[dtype]}
    return out


def measure(quick=False, devices=DEVICES, status=gpu_status):
    """The section's report: ``available`` and ``device`` (or ``reason``), then the measurements."""
    ok, about = status()
    if not ok:
        return {"available": False, "reason": about}
    report = {"available": True, "device": about}
    report["gradients"] = gradient_differences(devices)
    report["wide"] = wide_rates(quick, devices=devices)
    report["mnist"] = mnist_runs(quick, devices=devices)
    return report


def format_report(g):
    if not g["available"]:
        return f"gpu: no GPU measured here: {g['reason']}"
    lines = [f"gpu: {g['device']}"]
    for dtype, d in g["gradients"].items():
        verdict = "within" if d["within"] else "NOT within"
        lines.append(f"  gradients GPU vs CPU ({dtype}, wide net, one batch): max relative difference "
                     f"{d['max_relative_difference']:.1e}, {verdict} {d['tolerance']:g}")
    w = g["wide"]
    lines.append(f"  {'-'.join(map(str, w['sizes']))} ReLU, batch {w['batch']}, training: GPU {w['gpu']:,.0f} samples/s, "
                 f"CPU {w['cpu']:,.0f} samples/s ({w['gpu'] / w['cpu']:.1f}x)")
    m = g["mnist"]
    by = {(r["device"], r["batch"]): r for r in m["runs"]}
    for batch in sorted({r["batch"] for r in m["runs"]}):
        gpu, cpu = by[("gpu", batch)], by[("cpu", batch)]
        lines.append(f"  mnist-10k ({m['train_rows']:,} rows), 784-256-128-10 ReLU, Adam, batch {batch}, {m['epochs']} epochs: "
                     f"GPU {gpu['seconds']:.2f} s ({gpu['test_accuracy']:.2%} test), CPU {cpu['seconds']:.2f} s "
                     f"({cpu['test_accuracy']:.2%} test): {cpu['seconds'] / gpu['seconds']:.1f}x")
    return "\n".join(lines)
