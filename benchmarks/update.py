"""The optimizer update over the flat dials, written each way issue 17 asked to measure, in one run.

``python -m benchmarks.update [--dials 1864690] [--repeats 7]`` times one
Adam step over a flat float32 array as large as case 4's network:

- ``numpy``: dialnet's NumPy path (``dn.Adam().step`` on the flat arrays:
  thirteen whole-array calls, one thread);
- ``numpy, 2 threads``: the same ``step`` on two halves of the arrays at
  once (one Adam each), in a thread pool (NumPy releases the GIL in its loops);
- ``numba``: the compiled step's update (one fused loop, one thread);
- ``numba parallel``: the same loop split over numba's threads
  (``parallel=True``, ``prange``);
- ``numexpr``: the update as numexpr expressions (when numexpr is installed).

Each is timed alone, and right after a matrix product of case 4's first
layer (256x784 by 784x1024), as in a training step: OpenBLAS's threads are
then still spinning on the cores the update's threads want.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import time

import numpy as np

CASE4_DIALS = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3


def _numpy_adam(p, g):
    """dialnet's own Adam (the NumPy path) stepping the flat dials ``p`` with gradient ``g``."""
    import dialnet as dn  # noqa: PLC0415
    from dialnet.core.network import ArrayList  # noqa: PLC0415  (the lists fit hands an optimizer)

    optimizer, params, grads = dn.Adam(lr=LR, betas=(B1, B2), eps=EPS), ArrayList([p], p), ArrayList([g], g)
    return lambda: optimizer.step(params, grads)


def _constants(dtype, t):
    bc1, bc2_sqrt = 1.0 - B1**t, math.sqrt(1.0 - B2**t)
    return np.array([LR / bc1, 1.0 / bc2_sqrt, B1, 1.0 - B1, B2, 1.0 - B2, EPS, 0.0, 0.0, 1.0], dtype=dtype)


def candidates(n, seed=0):
    """``{name: (update(), dials)}``: each update turns its own copy of the same dials (``dials``)."""
    rng = np.random.default_rng(seed)
    base = [rng.standard_normal(n, dtype=np.float32) for _ in range(2)]

    def arrays():
        p, g = (a.copy() for a in base)
        return p, g, np.zeros_like(p), np.zeros_like(p), np.empty_like(p)

    out = {}
    p, g, *_ = arrays()
    out["numpy"] = _numpy_adam(p, g), p

    pool = concurrent.futures.ThreadPoolExecutor(2)
    p2, g2, *_ = arrays()
    half = n // 2
    halves = [_numpy_adam(p2[sl], g2[sl]) for sl in (slice(0, half), slice(half, n))]  # one Adam per half
    out["numpy, 2 threads"] = (lambda: list(pool.map(lambda update: update(), halves))), p2

    try:
        from numba import njit, prange  # noqa: PLC0415  (optional)

        from dialnet.train import _kernels  # noqa: PLC0415  (imports numba)
    except ImportError:
        pass
    else:
        p3, g3, m3, v3, _ = arrays()
        c = _constants(np.float32, 1)
        empty = p3[:0]
        out["numba"] = (lambda: _kernels._update(p3, g3, m3, v3, empty, _kernels.ADAM, c)), p3

        @njit(parallel=True, error_model="numpy")
        def adam_parallel(p, g, m, v, c):
            step, inv_bc2, b1, nb1, b2, nb2, eps = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
            for i in prange(p.shape[0]):
                gi = g[i]
                mi = m[i] * b1 + gi * nb1
                vi = v[i] * b2 + gi * gi * nb2
                m[i] = mi
                v[i] = vi
                p[i] -= mi / (np.sqrt(vi) * inv_bc2 + eps) * step

        p4, g4, m4, v4, _ = arrays()
        out["numba parallel"] = (lambda: adam_parallel(p4, g4, m4, v4, c)), p4

    try:
        import numexpr as ne  # noqa: PLC0415  (optional)
    except ImportError:
        pass
    else:
        p5, g5, m5, v5, _ = arrays()
        c5 = {"b1": np.float32(B1), "nb1": np.float32(1 - B1), "b2": np.float32(B2), "nb2": np.float32(1 - B2),
              "inv": np.float32(1 / math.sqrt(1 - B2)), "eps": np.float32(EPS), "step": np.float32(LR / (1 - B1))}

        def numexpr_update():
            ne.evaluate("m * b1 + g * nb1", local_dict={"m": m5, "g": g5, **c5}, out=m5)
            ne.evaluate("v * b2 + g * g * nb2", local_dict={"v": v5, "g": g5, **c5}, out=v5)
            ne.evaluate("p - m / (sqrt(v) * inv + eps) * step", local_dict={"p": p5, "m": m5, "v": v5, **c5}, out=p5)

        out["numexpr"] = numexpr_update, p5
    return out


def measure(n=CASE4_DIALS, repeats=7):
    """``{name: (alone_us, after_product_us)}``: medians of ``repeats`` rounds of 20 updates each."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((256, 784), dtype=np.float32)
    B = rng.standard_normal((784, 1024), dtype=np.float32)
    C = np.empty((256, 1024), dtype=np.float32)
    runs = {name: fn for name, (fn, _) in candidates(n).items()}
    results = {name: ([], []) for name in runs}
    for fn in runs.values():
        fn()  # compile, warm up
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            for _ in range(20):
                fn()
            results[name][0].append((time.perf_counter() - start) / 20)
            spent = 0.0
            for _ in range(20):
                np.dot(A, B, out=C)
                start = time.perf_counter()
                fn()
                spent += time.perf_counter() - start
            results[name][1].append(spent / 20)
    return {name: (1e6 * float(np.median(a)), 1e6 * float(np.median(b))) for name, (a, b) in results.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.update", description=__doc__.splitlines()[0])
    parser.add_argument("--dials", type=int, default=CASE4_DIALS, help=f"flat array size (default {CASE4_DIALS:,}: case 4)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    if args.dials < 2 or args.repeats < 1:
        parser.error("--dials must be at least 2 and --repeats at least 1")
    print(f"Adam update over {args.dials:,} float32 dials, medians of {args.repeats} rounds (us per update)")
    print(f"{'candidate':<18} {'alone':>9} {'after a product':>16}")
    for name, (alone, after) in measure(args.dials, args.repeats).items():
        print(f"{name:<18} {alone:>9,.0f} {after:>16,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
