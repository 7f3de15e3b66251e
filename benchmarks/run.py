"""The ``python -m benchmarks`` command: run the sections, print the table, check the targets."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from . import accuracy, distributed, gpu, memory, startup, tables
from .cases import CASES, make_data
from .timing import PAUSE_S, interleaved, median
from .tools import CASE_TOOLS, RUNNERS, TOOLS, Unavailable

SECTIONS = ("cases", "startup", "memory", "accuracy", "gpu", "distributed", "tables")
QUICK_SECTIONS = ("cases", "startup")

# (case, peer, least dialnet/peer speed ratio) from issue 17
SPEED_TARGETS = (("1", "torch", 8.0), ("2", "torch", 8.0), ("2", "sklearn", 4.0), ("3", "torch", 1.5), ("4", "torch", 1.1),
                 ("5b", "torch", 1.3))
PEAK_SHARE_TARGET = 0.85  # case 4's matrix products as a share of this run's sgemm peak
HELP_RATIO_TARGET = 1.3  # `dialnet --help` against `python -c "import numpy"`
RSS_SHARE_TARGET = 1 / 3


def _matmul_unit(size):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    C = np.empty_like(A)
    return lambda: np.matmul(A, B, out=C)


def run_case(case, quick, repeats, pause=PAUSE_S, tools=CASE_TOOLS):
    """Time one case for every installed tool; return samples/s per tool (and the matmul peak)."""
    n = case.n_samples(quick)
    X, y = make_data(case, n)
    units, warmups, skipped, runs = {}, {}, {}, {}
    warm_n = min(n, 4 * case.batch)
    for tool in tools:
        try:
            run = runs[tool] = RUNNERS[tool](case, X, y)
        except Unavailable as exc:
            skipped[tool] = str(exc)
            continue
        units[tool] = lambda run=run: run(n)
        warmups[tool] = lambda run=run: run(warm_n)
    peak_size = 1024 if quick else 2048
    if case.against_peak:
        units["matmul"] = warmups["matmul"] = _matmul_unit(peak_size)
    times = interleaved(units, repeats, warmup=warmups, pause=pause)
    result = {"case": case.key, "title": case.title, "samples": n, "repeats": repeats,
              "samples_per_s": {}, "skipped": skipped, "engine": getattr(runs.get("dialnet"), "engine", None)}
    for tool, seconds in times.items():
        if tool != "matmul":
            result["samples_per_s"][tool] = n / median(seconds)
    if case.against_peak:
        peak = 2 * peak_size**3 / median(times["matmul"])
        rate = result["samples_per_s"]["dialnet"] * case.train_flops_per_sample()
        result["peak"] = {"matmul_size": peak_size, "peak_gflops": peak / 1e9, "dialnet_gflops": rate / 1e9,
                          "share": rate / peak}
        if "torch" in result["samples_per_s"]:
            result["peak"]["torch_gflops"] = result["samples_per_s"]["torch"] * case.train_flops_per_sample() / 1e9
    return result


_blas_limit = None  # threadpoolctl's limiter: the limit holds while it is referenced


def limit_threads(n):
    """Pin torch's intra-op pool and every BLAS pool in this process (NumPy's, hence scikit-learn's) to ``n`` threads."""
    global _blas_limit
    try:
        import torch  # noqa: PLC0415

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl (pip install threadpoolctl)") from None
    _blas_limit = threadpool_limits(limits=n)


def machine_info():
    info = {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        info["cpu"] = platform.processor() or None
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415  (comes with scikit-learn)

        info["blas"] = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                        for p in threadpool_info() if p.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = None
    try:
        import torch  # noqa: PLC0415

        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        info["torch"] = None
    try:
        import sklearn  # noqa: PLC0415

        info["sklearn"] = sklearn.__version__
    except ImportError:
        info["sklearn"] = None
    return info


def _load():
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def _fmt_rate(value):
    return "n/a" if value is None else f"{value:,.0f}"


def _fmt_ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def format_cases(results):
    head = ("case", "dialnet", "numpy path", "torch", "sklearn", "vs torch", "vs sklearn", "% of peak")
    rows = []
    for r in results:
        rate = r["samples_per_s"]
        d = rate.get("dialnet")
        share = f"{r['peak']['share']:.0%}" if r.get("peak") else "-"
        numpy_path = _fmt_rate(rate["numpy path"]) if "numpy path" in rate else "-"
        rows.append((f"{r['case']}. {r['title']}", _fmt_rate(d), numpy_path, _fmt_rate(rate.get("torch")),
                     _fmt_rate(rate.get("sklearn")), _fmt_ratio(d, rate.get("torch")), _fmt_ratio(d, rate.get("sklearn")),
                     share))
    widths = [max(len(row[i]) for row in rows + [head]) for i in range(len(head))]
    line = lambda row: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row))  # noqa: E731
    engines = sorted({r["engine"] for r in results if r.get("engine")})
    out = ["samples per second (median), dialnet's speed as a multiple of each peer's, and its matrix products' "
           "share of this run's float32 matmul peak (training)",
           f"dialnet trained on its {' and '.join(engines) or 'default'} engine; 'numpy path' is the same fit with "
           "engine='numpy'", line(head),
           "  ".join("-" * w for w in widths)]
    out += [line(row) for row in rows]
    for r in results:
        p = r.get("peak")
        if p:
            torch_part = f", torch {p['torch_gflops']:.1f}" if "torch_gflops" in p else ""
            out.append(f"case {r['case']}: dialnet {p['dialnet_gflops']:.1f} GFLOP/s{torch_part} (matrix products only) = "
                       f"{p['share']:.0%} of this run's float32 matmul peak, {p['peak_gflops']:.1f} GFLOP/s "
                       f"({p['matmul_size']}x{p['matmul_size']} np.matmul)")
        for tool, why in r["skipped"].items():
            if tool == "numpy path" and r["case"].startswith("5"):
                continue  # inference has one path
            out.append(f"case {r['case']}: {tool} skipped: {why}")
    return "\n".join(out)


def format_extras(report):
    out = []
    s = report.get("startup")
    if s:
        numpy_part = f", `python -c \"import numpy\"`: {s['numpy_s']:.3f} s" if "numpy_s" in s else ""
        out.append(f"dialnet --help: {s['help_s']:.3f} s wall (a bare `python -c pass`: {s['python_s']:.3f} s{numpy_part}); "
                   f"import dialnet: {s['import_s']:.3f} s (medians of {s['runs']} fresh processes)")
    m = report.get("memory")
    if m:
        parts = [f"{tool} {v['peak_mib']:.0f} MiB (+{v['training_growth_mib']:.0f} in training)" if v else f"{tool} n/a"
                 for tool, v in m["tools"].items()]
        out.append(f"peak RSS, case {m['case']} training, {m['samples']:,} rows, one process each: " + ", ".join(parts))
    a = report.get("accuracy")
    if a:
        parts = []
        for tool in ("dialnet", "sklearn"):
            v = a.get(tool)
            if v is None:
                parts.append(f"{tool} n/a")
            elif v["reached"]:
                parts.append(f"{tool} {v['seconds']:.1f} s ({v['epochs']} epochs, {v['accuracy']:.2%})")
            else:
                parts.append(f"{tool} not reached in {v['epochs']} epochs, {v['seconds']:.1f} s (best {v['accuracy']:.2%})")
        out.append(f"time to {a['target']:.0%} test accuracy, mnist-10k ({a['train_rows']:,} training rows with shifts): "
                   + ", ".join(parts))
    return "\n".join(out)


def check_targets(report):
    """``(description, value text, met)`` for each target of issue 17 that this run measured."""
    checks = []
    by_case = {r["case"]: r for r in report.get("cases", [])}
    for key, peer, least in SPEED_TARGETS:
        rate = by_case.get(key, {}).get("samples_per_s", {})
        if "dialnet" in rate and peer in rate:
            ratio = rate["dialnet"] / rate[peer]
            checks.append((f"case {key}: dialnet >= {least:g}x {peer}", f"{ratio:.2f}x", ratio >= least))
    peak = by_case.get("4", {}).get("peak")
    if peak:
        checks.append((f"case 4: dialnet >= {PEAK_SHARE_TARGET:.0%} of matmul peak", f"{peak['share']:.0%}",
                       peak["share"] >= PEAK_SHARE_TARGET))
    s = report.get("startup")
    if s:
        if "numpy_s" in s:
            ratio = s["help_s"] / s["numpy_s"]
            checks.append((f"dialnet --help <= {HELP_RATIO_TARGET:g}x `python -c \"import numpy\"`", f"{ratio:.2f}x",
                           ratio <= HELP_RATIO_TARGET))
    m = report.get("memory")
    for tool in ("dialnet", "numpy path"):
        if m and m["tools"].get(tool) and m["tools"].get("torch"):
            share = m["tools"][tool]["peak_mib"] / m["tools"]["torch"]["peak_mib"]
            checks.append((f"peak RSS <= 1/3 of torch's ({tool})", f"{share:.2f}", share <= RSS_SHARE_TARGET))
    return checks


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="dialnet against PyTorch (CPU) and scikit-learn: same work, same data, one run.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat (seconds, for CI)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per tool (default 5, 1 with --quick)")
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated, from {','.join(SECTIONS)} (default: all; with --quick: {','.join(QUICK_SECTIONS)})")
    parser.add_argument("--cases", default=None, help="comma-separated case keys, e.g. 1,2,4 (default: all)")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit every tool to this many threads (torch.set_num_threads and the BLAS pool); "
                             "default: each library's own default")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    sections = (args.sections.split(",") if args.sections else list(QUICK_SECTIONS if args.quick else SECTIONS))
    unknown = [s for s in sections if s not in SECTIONS]
    keys = args.cases.split(",") if args.cases else [c.key for c in CASES]
    unknown += [f"case {k}" for k in keys if k not in {c.key for c in CASES}]
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    if unknown or repeats < 1 or (args.threads is not None and args.threads < 1):
        parser.error(f"unknown {', '.join(unknown)}" if unknown else "--repeats and --threads must be at least 1")
    if args.threads is not None:
        limit_threads(args.threads)
    pause = 0.0 if args.quick else PAUSE_S

    started = time.perf_counter()
    report = {"quick": args.quick, "machine": machine_info(), "load_before": _load(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    m = report["machine"]
    print(f"dialnet benchmarks{' (--quick)' if args.quick else ''}: {m['cores']} cores, {m['cpu'] or m['machine']}; "
          f"Python {m['python']}, NumPy {m['numpy']} {m['blas'] or ''}, torch {m['torch']}, scikit-learn {m['sklearn']}")
    print(f"{report['date']}, {report['load_before']}; float32 everywhere; {repeats} timed repeats per tool, interleaved, after a warm-up\n",
          flush=True)

    if "cases" in sections:
        report["cases"] = []
        for case in CASES:
            if case.key in keys:
                report["cases"].append(run_case(case, args.quick, repeats, pause))
        print(format_cases(report["cases"]), flush=True)
    if "startup" in sections:
        report["startup"] = startup.measure(runs=1 if args.quick else 7)
    if "memory" in sections:
        rows = memory.QUICK_ROWS if args.quick else memory.MEMORY_ROWS
        tools = {tool: memory.measure_in_subprocess(tool, samples=rows) for tool in CASE_TOOLS}
        first = next(v for v in tools.values() if v)
        report["memory"] = {"case": first["case"], "samples": first["samples"], "tools": tools}
    if "accuracy" in sections:
        report["accuracy"] = accuracy.measure(quick=args.quick)
    if "gpu" in sections:
        report["gpu"] = gpu.measure(quick=args.quick)
        print("\n" + gpu.format_report(report["gpu"]), flush=True)
    if "distributed" in sections:
        report["distributed"] = distributed.measure(quick=args.quick)
        print("\n" + distributed.format_report(report["distributed"]), flush=True)
    if "tables" in sections:
        report["tables"] = tables.measure(quick=args.quick)
        print("\n" + tables.format_report(report["tables"]), flush=True)
    extras = format_extras(report)
    if extras:
        print("\n" + extras)

    report["load_after"] = _load()
    report["targets"] = [{"target": t, "value": v, "met": met} for t, v, met in check_targets(report)]
    if report["targets"] and not args.quick:
        print("\ntargets (issue 17):")
        for t in report["targets"]:
            print(f"  {'met    ' if t['met'] else 'NOT met'}  {t['target']}: {t['value']}")
    print(f"\n{report['load_after']}; {time.perf_counter() - started:.0f} s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0
