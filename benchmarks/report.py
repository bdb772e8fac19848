"""One table from a pytest-benchmark JSON file:  python -m benchmarks.report BENCH.json

Columns: kernel, variant, device, dtype, size, median time, ratio to torch.distributions (same
kernel, device, dtype and size, same run, from calls timed alternately; < 1 means faster), achieved throughput and its fraction
of the machine's limit (the median of its measurements over the same run: copy bandwidth for elementwise
kernels, matmul FLOP/s at the decoder's shapes for the bounds, whichever is closer for the flows),
peak memory (torch's allocations during one call).
Below the table: the limits; each elementwise kernel's time over that of its floor (the noise it
draws, or its logs and exps alone; timed alternately) and the fraction of the copy bandwidth the
floor alone reaches; the IWAE peak-memory ratio iw=5000 / iw=50 at the same batch.
``--best``: the same from the fastest calls and the best limit measurements (on a shared machine,
the figures least disturbed by other work).
"""
import argparse
import json
import math
import sys

TD = "torch.distributions"
VARIANT_ORDER = {"ours": 0, "ours (fused)": 1, TD: 2, "naive": 3, "limit": 4}


def _key(info):
    return (info.get("kernel"), info.get("device"), info.get("dtype"), info.get("size"))


def enrich(benchmarks):
    """Add to each benchmark's extra_info the median of the torch.distributions and naive
    variants of the same kernel, device, dtype and size, and the ratios to them. In place."""
    medians, minima = {}, {}
    for b in benchmarks:
        info, stats = b.get("extra_info") or {}, b.get("stats") or {}
        if stats.get("median") is not None and info.get("variant"):
            medians[_key(info) + (info["variant"],)] = stats["median"]
            minima[_key(info) + (info["variant"],)] = stats.get("min")
    for b in benchmarks:
        info, stats = b.setdefault("extra_info", {}), b.get("stats") or {}
        median, fastest = stats.get("median"), stats.get("min")
        for variant, name in ((TD, "torch_distributions"), ("naive", "naive")):
            other = medians.get(_key(info) + (variant,))
            if other is not None and median is not None:
                info[f"{name}_median_s"] = other
                info[f"ratio_to_{name}"] = median / other
            other = minima.get(_key(info) + (variant,))
            if other and fastest is not None:
                info[f"ratio_to_{name}_min"] = fastest / other
    return benchmarks


def iwae_memory_ratios(benchmarks):
    """{(variant, device, dtype, batch): peak(iw=5000) / peak(iw=50)} where both were measured."""
    peaks = {}
    for b in benchmarks:
        info = b.get("extra_info") or {}
        if info.get("kernel") == "negative_iwae_bound" and info.get("peak_memory_bytes"):
            peaks[(info.get("variant"), info.get("device"), info.get("dtype"), info.get("batch"), info.get("iw"))] = info["peak_memory_bytes"]
    out = {}
    for (variant, device, dtype, batch, iw), peak in peaks.items():
        if iw == 5000 and (variant, device, dtype, batch, 50) in peaks:
            out[(variant, device, dtype, batch)] = peak / peaks[(variant, device, dtype, batch, 50)]
    return out


def fmt_time(s):
    if s is None:
        return "-"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def fmt_bytes(n):
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_rate(value, unit):
    if value is None:
        return "-"
    if unit == "B/s":
        return f"{value / 1e9:.3g} GB/s"
    return f"{value / 1e9:.3g} GFLOP/s"


def _num(x, spec):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def rows(benchmarks, best=False):
    """Table rows (dicts of strings), sorted by kernel, device, dtype, size, variant. ``best``: the
    fastest call's figures instead of the median's (time, ratio, throughput, fraction of the best limit)."""
    def order(b):
        info = b.get("extra_info") or {}
        return (info.get("kernel") or b.get("name", ""), info.get("device") or "", info.get("dtype") or "",
                info.get("size_order", 0), str(info.get("size")), VARIANT_ORDER.get(info.get("variant"), 9))

    out = []
    for b in sorted(benchmarks, key=order):
        info, stats = b.get("extra_info") or {}, b.get("stats") or {}
        limit = info.get("limit_name")
        if best:
            time_s, achieved, fraction = stats.get("min"), info.get("achieved_best"), info.get("fraction_of_limit_best")
            ratio = info.get("ratio_to_torch_distributions_best", info.get("ratio_to_torch_distributions_min"))
        else:
            time_s, achieved, fraction = stats.get("median"), info.get("achieved"), info.get("fraction_of_limit")
            ratio = info.get("ratio_to_torch_distributions_interleaved", info.get("ratio_to_torch_distributions"))
        out.append({
            "kernel": info.get("kernel") or b.get("name", "?"),
            "variant": info.get("variant", "-"),
            "device": info.get("device", "-"),
            "dtype": info.get("dtype", "-"),
            "size": str(info.get("size", "-")),
            "min" if best else "median": fmt_time(time_s),
            "vs td": _num(ratio, ".2f"),
            "achieved": fmt_rate(achieved, info.get("achieved_unit")),
            "of limit": "-" if fraction is None else f"{fraction:.0%} {'copy' if limit == 'copy bandwidth' else 'matmul'}",
            "peak mem": fmt_bytes(info.get("peak_memory_bytes")),
        })
    return out


COLUMNS = ["kernel", "variant", "device", "dtype", "size", "median", "vs td", "achieved", "of limit", "peak mem"]


def format_table(benchmarks, limits=None, best=False, threads=None):
    """The whole report as a string (ratios are computed here if the JSON lacks them). ``best``:
    the figures of the fastest calls (see :func:`rows`)."""
    enrich(benchmarks)
    table = rows(benchmarks, best)
    columns = [("min" if best and c == "median" else c) for c in COLUMNS]
    widths = {c: max([len(c)] + [len(r[c]) for r in table]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    previous = None
    for r in table:
        group = (r["kernel"], r["device"], r["dtype"], r["size"])
        if previous is not None and group[:1] != previous[:1]:
            lines.append("")
        previous = group
        lines.append("  ".join(r[c].ljust(widths[c]) for c in columns).rstrip())
    lines.append("")
    if best:
        lines.append("min: the fastest call (the one least disturbed by other work on the machine).")
        lines.append("vs td: time / time of the torch.distributions equivalent on the same inputs (< 1: faster): the fastest of")
        lines.append("       calls timed alternately, back to back, over the fastest of the other; where absent, min / min of the run.")
        lines.append("of limit: throughput of the fastest call / the best measurement of the machine's limit over the same run.")
    else:
        lines.append("vs td: time / time of the torch.distributions equivalent on the same inputs (< 1: faster): the median ratio of")
        lines.append("       calls timed alternately, back to back; where absent, median / median of the two benchmarks of the run.")
        lines.append("of limit: achieved throughput / the machine's limit, median of its measurements over the same run.")
    if threads is not None:
        lines.append(f"torch threads: {threads} (CPU; set with OMP_NUM_THREADS).")
    backends = sorted({str(b["extra_info"]["fused_backend"]) for b in benchmarks if (b.get("extra_info") or {}).get("fused_backend")})
    if backends:
        lines.append(f"ours (fused): benchmarks/fused.py, compiled with {', '.join(backends)}.")
    for lim in (limits or {}).values():
        lines.append(f"limit: {lim['name']} best {fmt_rate(lim['best'], lim['unit'])}, median {fmt_rate(lim['median'], lim['unit'])} "
                     f"over the run's {lim['n']} measurements ({lim['what']})")
    floors = {}
    for b in benchmarks:
        info = b.get("extra_info") or {}
        value = info.get("ratio_to_floor_best" if best else "ratio_to_floor")
        if value is None:  # JSON written before the floors were generalized
            value = info.get("ratio_to_randn_best" if best else "ratio_to_randn")
        if value is not None:
            key = (info.get("kernel"), info.get("device"), info.get("dtype"), info.get("size"))
            entry = floors.setdefault(key, {"what": info.get("floor", "torch.randn alone"), "figures": [], "fraction": None})
            entry["figures"].append(f"{info.get('variant')} {value:.2f}")
            if info.get("floor_fraction_of_limit") is not None:
                entry["fraction"] = info["floor_fraction_of_limit"]
    for (kernel, device, dtype, size), entry in sorted(floors.items(), key=str):
        line = f"{kernel} time / {entry['what']} ({device}, {dtype}, {size}): {', '.join(entry['figures'])}"
        if entry["fraction"] is not None:
            line += f"; the floor alone reaches {entry['fraction']:.0%} of copy"
        lines.append(line)
    ratios = iwae_memory_ratios(benchmarks)
    for (variant, device, dtype, batch), ratio in sorted(ratios.items(), key=str):
        lines.append(f"negative_iwae_bound peak memory, iw=5000 / iw=50 at batch {batch} ({variant}, {device}, {dtype}): "
                     f"{ratio:.2f}x (target <= 1.5x)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("json", help="a pytest-benchmark JSON file (pytest benchmarks/ --benchmark-only --benchmark-json=FILE)")
    parser.add_argument("--best", action="store_true",
                        help="the fastest call's figures (time, ratios, fraction of the best limit) instead of the median's: "
                             "on a machine shared with other work, the ones least disturbed by it")
    args = parser.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    benchmarks = data.get("benchmarks", [])
    if not benchmarks:
        print(f"{args.json}: no benchmarks (was it written with benchmarking disabled?)", file=sys.stderr)
        return 1
    print(format_table(benchmarks, data.get("machine_limits"), best=args.best, threads=data.get("torch_threads")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
