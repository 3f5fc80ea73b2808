#!/usr/bin/env python3
"""Side-by-side timing of collapse against numpy on the paper's 1-D Gaussian
study (BENCHMARKS.md). numpy does the same math, vectorized over replicates,
and writes nothing; collapse runs the full pipeline with every table written,
and its kernel alone (examples/gaussian_kernel.rs).

    cargo build --release --examples && python3 benches/peer_numpy.py

Needs numpy (pip install numpy). Reports best-of-N and median wall times
(REPEATS=N, default 2) of the full run as it runs by default (every file
fsynced before its generation is sealed) and with --no-fsync (files
through the page cache), each beside the I/O floor of the same files
written the same way. The repeats go round-robin (numpy's loop, the
kernel, a run of each mode), so a change in this VM's speed during the
script reaches both sides of a ratio alike.
OUT=DIR writes the run directories under DIR (default: the system's
temporary folder); OUT=/dev/shm separates the tool's CPU time from the
disk's. On a disk, run directories are removed only when the script ends:
ext4 skips inodes freed in the last minutes when it allocates new ones,
so deleting a 10,000-file run just before the next would charge that to
the next run. On tmpfs they are removed as soon as they are measured:
kept, they held gigabytes of memory, and the runs after them slowed by
up to half (0.68 s instead of 0.40-0.45 s for M=100 without fsync).
"""
import json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "collapse")
KERNEL = os.path.join(TARGET, "release", "examples", "gaussian_kernel")
REPEATS = int(os.environ.get("REPEATS", "2"))
MADE = []  # every directory written, removed at the end


def numpy_loop(m, r, g, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((r, m))
    t = time.perf_counter()
    for _ in range(g):
        mu = x.mean(axis=1)
        sd = x.std(axis=1, ddof=1)
        x = mu[:, None] + sd[:, None] * rng.standard_normal((r, m))
    return time.perf_counter() - t


# Started from a fresh, small interpreter: Linux carries a process's peak
# RSS across fork and exec, so a child forked from this script (which holds
# the run directory in memory for `io_floor`) would report this script's peak.
WAIT = """
import json, os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
print(json.dumps([time.perf_counter() - t, usage.ru_maxrss / 1024, status]))
"""


def run(cmd):
    """Wall seconds and peak RSS (MiB) of one child process."""
    seconds, rss, status = json.loads(subprocess.run([sys.executable, "-c", WAIT, *cmd], check=True,
                                                     capture_output=True, text=True).stdout)
    if status != 0:
        sys.exit(f"{cmd} failed: {status}")
    return seconds, rss


def io_floor(run_dir, sync):
    """Seconds to write the run directory's files again, as they are (same
    folders, same files, same bytes, read into memory first): with `sync`,
    then made durable with one sync. What any tool that writes these tables
    that way must spend on this disk, before encoding a single row."""
    files = []
    for d, _, fs in os.walk(run_dir):
        for f in fs:
            path = os.path.join(d, f)
            with open(path, "rb") as fh:
                files.append((os.path.relpath(path, run_dir), fh.read()))
    out = tempfile.mkdtemp(prefix="collapse-floor-", dir=os.environ.get("OUT"))
    MADE.append(out)
    t = time.perf_counter()
    made = set()
    for rel, data in files:
        folder = os.path.dirname(os.path.join(out, rel))
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(os.path.join(out, rel), "wb") as fh:
            fh.write(data)
    if sync:
        os.sync()
    return time.perf_counter() - t


def on_tmpfs(path):
    """Whether `path` lies on tmpfs (the longest mount point above it)."""
    path = os.path.realpath(path)
    best, fstype = "", ""
    with open("/proc/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 3:
                continue
            mount = parts[1].replace("\\040", " ")
            inside = path == mount or path.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, fstype = mount, parts[2]
    return fstype == "tmpfs"


def case(m, r, g, pipeline):
    parent = os.environ.get("OUT") or tempfile.gettempdir()
    prompt_cleanup = on_tmpfs(parent)
    np_times, kernel_times = [], []
    modes = [("fsync", []), ("page_cache", ["--no-fsync"])]
    full = {mode: [] for mode, _ in modes}
    floor = {mode: [] for mode, _ in modes}
    for _ in range(REPEATS):
        np_times.append(numpy_loop(m, r, g))
        kernel_times.append(json.loads(subprocess.run([KERNEL, str(m), str(r), str(g)], check=True, capture_output=True,
                                                      text=True).stdout)["seconds"])
        for mode, flags in modes:
            out = tempfile.mkdtemp(prefix="collapse-bench-", dir=os.environ.get("OUT"))
            MADE.append(out)
            shutil.rmtree(out)
            full[mode].append(run([BIN, "run", pipeline, "--out", out, "--quiet", *flags, "--set", f"generate.n={m}",
                                   "--set", f"data.n={m}", "--set", f"replicates={r}", "--set", f"generations={g}"]))
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
            floor[mode].append(io_floor(out, sync=not flags))
            if prompt_cleanup:
                for d in MADE:
                    shutil.rmtree(d, ignore_errors=True)
                MADE.clear()
    np_best, kernel = min(np_times), min(kernel_times)
    result = {"case": f"M={m} R={r} G={g}", "numpy_loop_s": round(np_best, 3),
              "numpy_loop_median_s": round(statistics.median(np_times), 3), "collapse_kernel_s": round(kernel, 3),
              "kernel_speedup_vs_numpy": round(np_best / kernel, 2)}
    for mode, _ in modes:
        best = min(full[mode])
        median = statistics.median(t for t, _ in full[mode])
        result.update({
            f"full_run_{mode}_s": round(best[0], 3),
            f"full_run_{mode}_over_numpy": round(best[0] / np_best, 2),
            f"full_run_{mode}_median_s": round(median, 3),
            f"full_run_{mode}_median_over_numpy_median": round(median / statistics.median(np_times), 2),
            f"io_floor_{mode}_s": round(min(floor[mode]), 3),
            f"io_floor_{mode}_over_numpy": round(min(floor[mode]) / np_best, 2),
            f"full_run_{mode}_peak_rss_mib": round(best[1], 1),
        })
    result["run_dir_mib"] = round(size / 2**20, 1)
    result["numpy_process_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    pipeline = os.path.join(ROOT, "pipelines", "gaussian-1d-replace.toml")
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, cores {os.cpu_count()}")
    try:
        case(100, 200, 1000, pipeline)
        case(10000, 10, 1000, pipeline)
    finally:
        for d in MADE:
            shutil.rmtree(d, ignore_errors=True)
