"""The benchmark: sqlite-cnn against PyTorch on the same machine, in one run.

For each batch size: one epoch of the notebook's model (Adam, shuffled) on
the first TRAIN_ROWS training images, scaled to seconds per 60000-image
epoch; test accuracy after it; inference time per image with scalar
cnn_predict over the 10000 test rows and with cnn_predictions (batched);
peak resident memory of the training process; MNIST import time. Each
measurement runs in a fresh process, once in each of --repeat rounds (the
same order every round); figures are medians over the rounds, ratios the
medians of each round's ratios, so drifting load on a shared machine
weighs on both sides of a ratio alike. PyTorch is
first tried in each of its variants (torch_mnist.py trial) and measured in
the fastest fp32 one; the machine, sqlite-cnn's build (cnn_debug()) and what
PyTorch runs on are printed first.

Usage (through tests/bench/run.sh, which builds and installs what is needed):
  bench.py --so build/cnn.so --data data [--rows 60000] [--batches 32,128]
           [--threads 2] [--repeat 1] [--no-torch]
"""
import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile

PY = "/usr/bin/python3"
# Debian's PyTorch calls libblas.so.3 for its dense layers: netlib's reference
# BLAS (3x slower training here) unless an OpenBLAS is installed (run.sh
# installs both builds). The OpenMP build shares PyTorch's OpenMP threads; the
# pthread build (the system default) starts threads of its own, which spin
# against PyTorch's on the same cores.
OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
# "" leaves libgomp's default: spin a while, then sleep.
WAIT_POLICIES = ("", "PASSIVE")
# glibc malloc keeps freed memory instead of returning it with every batch.
TORCH_ENV = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"}
# Features that decide which kernels sqlite-cnn, OpenBLAS and oneDNN can use.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")

CHILD = r"""
import json, resource, sqlite3, sys, time
so, db, rows, batch, threads, what = sys.argv[1:7]
c = sqlite3.connect(db, isolation_level=None)
c.enable_load_extension(True)
c.load_extension(so)
out = {}
if what == "import":
    t = time.perf_counter(); c.execute("SELECT cnn_import_mnist(?)", (sys.argv[7],)).fetchone()
    out["import_s"] = time.perf_counter() - t
elif what == "train":
    extra = json.loads(sys.argv[8]) if len(sys.argv) > 8 else {}
    name = f"bench_{batch}_{threads}" + "".join(f"_{v}" for v in extra.values())
    c.execute("SELECT cnn_drop(?) FROM cnn_models WHERE name = ?", (name, name)).fetchall() if \
        c.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'cnn_models'").fetchone()[0] else None
    c.execute("SELECT cnn_create(?, NULL, 1)", (name,)).fetchone()
    src = f"SELECT image, label FROM mnist_train WHERE id < {int(rows)}"
    r = json.loads(c.execute("SELECT cnn_train(?, ?, ?)", (name, src, json.dumps(
        {"epochs": 1, "batch_size": int(batch), "seed": 1, "threads": int(threads), **extra}))).fetchone()[0])
    out["train_s"] = r["seconds"]
    out["isa"], out["precision"] = r["isa"], r["precision"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["test_accuracy"] = json.loads(c.execute("SELECT cnn_evaluate(?, 'mnist_test')", (name,)).fetchone()[0])["accuracy"]
elif what == "predict":
    extra = json.loads(sys.argv[8]) if len(sys.argv) > 8 else {}
    name = f"bench_{batch}_{threads}"
    c.execute("SELECT cnn_precision(?, ?)", (name, extra.get("precision", "fp32"))).fetchone()
    c.execute("SELECT cnn_predict(?, image) FROM mnist_test LIMIT 1", (name,)).fetchall()
    t = time.perf_counter()
    c.execute("SELECT sum(cnn_predict(?, image)) FROM mnist_test", (name,)).fetchone()
    out["predict_us_scalar"] = (time.perf_counter() - t) / 10000 * 1e6
    t = time.perf_counter()
    c.execute("SELECT sum(predicted) FROM cnn_predictions(?, 'mnist_test')", (name,)).fetchone()
    out["predict_s_batched"] = time.perf_counter() - t
    out["test_accuracy"] = json.loads(c.execute("SELECT cnn_evaluate(?, 'mnist_test')", (name,)).fetchone()[0])["accuracy"]
    c.execute("SELECT cnn_precision(?, 'fp32')", (name,)).fetchone()
print(json.dumps(out))
"""


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(f"benchmark step failed: {' '.join(cmd[:3])}...\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def ours(args, db, what, batch=32, **options):
    """One measurement in a fresh process; options go to cnn_train ("isa",
    "precision")."""
    return run([PY, "-c", CHILD, args.so, db, str(args.rows), str(batch), str(args.threads), what, args.data,
                json.dumps(options)])


def torch_env(wait):
    # OPENBLAS_CORETYPE names a kernel for some other CPU (Haswell's on an
    # AVX-512 machine, say): OpenBLAS detects this one better by itself.
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY")}
    env.update(TORCH_ENV)
    if os.path.isdir(OPENBLAS_OPENMP):
        env["LD_LIBRARY_PATH"] = ":".join(filter(None, [OPENBLAS_OPENMP, env.get("LD_LIBRARY_PATH")]))
    if wait:
        env["OMP_WAIT_POLICY"] = wait
    return env


def torch(args, batch, wait, *what):
    here = os.path.dirname(os.path.abspath(__file__))
    return run([PY, os.path.join(here, "torch_mnist.py"), args.data, str(batch), str(args.threads),
                str(args.rows), *what], torch_env(wait))


def torch_trial(args, batch):
    """Trials under each OpenMP wait policy; returns the wait policy and trial
    of the fastest training. Threads that spin between parallel regions win
    on an idle machine; on one shared with other work they keep the thread
    that the others wait for off its core, and PASSIVE wins by up to 10x."""
    trials = {wait: torch(args, batch, wait, "trial") for wait in WAIT_POLICIES}
    for wait, trial in trials.items():
        print(variants(batch, wait, trial), flush=True)
    return min(trials.items(), key=lambda t: t[1]["times"]["train"][t[1]["best"]["train"]])


def median(runs, key):
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else float("nan")


def paired(a, ka, b, kb):
    """The median of a[i][ka] / b[i][kb] over runs made in the same round."""
    vals = [x[ka] / y[kb] for x, y in zip(a, b) if ka in x and kb in y and y[kb]]
    return statistics.median(vals) if vals else float("nan")


def machine():
    """The CPU and the vector features it has, from /proc/cpuinfo."""
    model, flags = "?", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return f"{model}, {os.cpu_count()} CPUs; " + " ".join(f for f in CPU_FLAGS if f in flags)


def cnn_debug(so):
    c = sqlite3.connect(":memory:")
    c.enable_load_extension(True)
    c.load_extension(so)
    try:
        return c.execute("SELECT cnn_debug()").fetchone()[0]
    except sqlite3.Error as e:
        return f"({e})"


def torch_setup(s):
    lines = [f"PyTorch {s['torch']}: {s['threads']} threads, {s['interop_threads']} interop threads, "
             f"oneDNN {'available' if s['onednn_available'] else 'not available'} "
             f"(instruction set {s.get('onednn_isa', '?')})",
             f"  libraries: {' '.join(s['libraries'])}",
             f"  OpenBLAS: {s.get('openblas', 'not loaded')}",
             f"  environment: {' '.join(f'{k}={v}' for k, v in s['env'].items()) or '(none of the variables that matter)'}"]
    return "\n".join(lines)


def variants(batch, wait, trial):
    """Every variant's time in the trial, fastest first; * marks the fastest fp32 one."""
    units = {"train": "train us/sample", "predict_single": "predict us/image",
             "predict_batched": "predict s/10000"}
    out = [f"PyTorch variants at batch {batch}, OMP_WAIT_POLICY={wait or '(unset)'}, "
           "fastest of short interleaved trial runs:"]
    for what, times in trial["times"].items():
        fp32 = sorted((n for n in times if "bf16" not in n), key=times.get)
        bf16 = sorted((n for n in times if "bf16" in n), key=times.get)
        fmt = (lambda t: f"{t:.3f}") if what == "predict_batched" else (lambda t: f"{t:.0f}")
        line = ", ".join(f"{n} {fmt(times[n])}{'*' if n == trial['best'][what] else ''}" for n in fp32)
        if bf16:
            line += "; bf16 autocast (not chosen): " + ", ".join(f"{n} {fmt(times[n])}" for n in bf16)
        out.append(f"  {units[what]:17} {line}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--so", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    print(f"CPU: {machine()}")
    print(f"sqlite-cnn, SELECT cnn_debug():\n{cnn_debug(args.so).rstrip()}", flush=True)
    db = os.path.join(tempfile.mkdtemp(), "bench.db")
    imp = [ours(args, db, "import") for _ in range(1)]
    rows, own = [], []
    debug = dict(l.split("=", 1) for l in cnn_debug(args.so).splitlines() if "=" in l)
    batches = [int(x) for x in args.batches.split(",")]
    scale = 60000 / args.rows
    for b in batches:
        first = b == batches[0]
        capped_too = debug.get("isa") in ("avx512", "amx")
        bf16_too = debug.get("gemm_bf16", "none").split()[0] not in ("none", "")
        wait, trial, bf16 = None, None, float("nan")
        if not args.no_torch:
            wait, trial = torch_trial(args, b)
            if first:
                print(torch_setup(trial["setup"]))
            bf16 = min(t for n, t in trial["times"]["train"].items() if "bf16" in n)
        # Rounds: each measurement once a round, in the same order, so that
        # a ratio pairs runs made minutes apart (the machines are shared and
        # their load drifts); ratios are medians of those pairs.
        m = {k: [] for k in ("mine", "capped", "probed", "bf16", "pred", "pred16", "ref")}
        for _ in range(args.repeat):
            m["mine"].append(ours(args, db, "train", b))
            if capped_too:  # the same build with its kernels capped at AVX2
                m["capped"].append(ours(args, db, "train", b, isa="avx2"))
            if first:  # the training option layer_stats must cost next to nothing
                m["probed"].append(ours(args, db, "train", b, layer_stats=True))
            if bf16_too:  # mixed precision where the CPU has a bf16 kernel
                m["bf16"].append(ours(args, db, "train", b, precision="bf16"))
            m["pred"].append(ours(args, db, "predict", b))
            if bf16_too and first:  # bf16 inference (cnn_precision) of the fp32-trained model
                m["pred16"].append(ours(args, db, "predict", b, precision="bf16"))
            if trial:
                m["ref"].append(torch(args, b, wait, "run", json.dumps(trial["best"])))

        def pair(a, ka, c, kc=None):
            return (median(m[a], ka), median(m[c], kc or ka), paired(m[a], ka, m[c], kc or ka))

        if capped_too:
            own.append((f"train s/epoch, batch {b}: {debug['isa']} / avx2", *pair("mine", "train_s", "capped")))
            own.append((f"  test accuracy, {debug['isa']} / avx2", *pair("mine", "test_accuracy", "capped")))
        if first:
            own.append((f"train s/epoch, batch {b}: layer_stats / without", *pair("probed", "train_s", "mine")))
        if bf16_too:
            own.append((f"train s/epoch, batch {b}: bf16 / fp32", *pair("bf16", "train_s", "mine")))
            own.append(("  test accuracy, bf16 / fp32", *pair("bf16", "test_accuracy", "mine")))
        if m["pred16"]:
            own.append(("predict us/image, scalar: bf16 / fp32", *pair("pred16", "predict_us_scalar", "pred")))
            own.append(("predict s/10000, batched: bf16 / fp32", *pair("pred16", "predict_s_batched", "pred")))
            own.append(("  test accuracy, bf16 / fp32 inference", *pair("pred16", "test_accuracy", "pred")))
        train = median(m["mine"], "train_s")
        a, r, q = pair("mine", "train_s", "ref", "seconds_per_epoch")
        q *= scale  # PyTorch's epoch is given for 60000 rows
        rows.append((f"train s/epoch, batch {b}", a * scale, r, q))
        rows.append((f"train us/sample, batch {b}", a / args.rows * 1e6, median(m["ref"], "us_per_sample"), q))
        rows.append((f"  against PyTorch bf16 (trial)", train / args.rows * 1e6, bf16,
                     train / args.rows * 1e6 / bf16))
        if m["bf16"]:
            ours16 = median(m["bf16"], "train_s") / args.rows * 1e6
            rows.append((f"  ours bf16, against PyTorch bf16", ours16, bf16, ours16 / bf16))
        rows.append((f"test accuracy after it", *pair("mine", "test_accuracy", "ref")))
        rows.append((f"peak RSS MB, batch {b}", *pair("mine", "peak_rss_mb", "ref")))
        if first:
            rows.append(("predict us/image, scalar", *pair("pred", "predict_us_scalar", "ref", "predict_us_batch1")))
            rows.append(("predict s/10000, batched", *pair("pred", "predict_s_batched", "ref",
                                                            "predict_s_10000_batched")))
    rows.append(("import MNIST s", median(imp, "import_s"), float("nan"), float("nan")))
    print(f"machine: {os.cpu_count()} cores, {threads_note(args)}; {args.rows} training rows, "
          f"median of {args.repeat} rounds; ratio: median of the rounds' ratios; "
          f"PyTorch in its fastest fp32 variant (*)")
    print(f"{'':34}{'sqlite-cnn':>12}{'PyTorch':>12}{'ratio':>8}")
    for name, a, b, ratio in rows:
        fmt = "{:>12.4f}" if abs(a) < 10 else "{:>12.1f}"
        print(f"{name:34}" + fmt.format(a) + ("{:>12.4f}" if abs(b) < 10 else "{:>12.1f}").format(b)
              + (f"{ratio:>8.2f}" if ratio == ratio else f"{'':>8}"))
    print_own(own, args)


def print_own(own, args):
    if not own:
        return
    print(f"sqlite-cnn against itself ({args.rows} training rows, median of {args.repeat} rounds; seconds "
          "scaled to 60000 rows; ratio: median of the rounds' ratios):")
    print(f"{'':42}{'this':>10}{'that':>10}{'ratio':>8}")
    scale = 60000 / args.rows
    for name, a, b, ratio in own:
        if "accuracy" in name:
            print(f"{name:42}{a:>10.4f}{b:>10.4f}{a - b:>+8.4f}")
        elif name.startswith("predict"):  # per image or per 10000: not scaled
            print(f"{name:42}{a:>10.4f}{b:>10.4f}{ratio:>8.2f}" if a < 10 else
                  f"{name:42}{a:>10.1f}{b:>10.1f}{ratio:>8.2f}")
        else:
            print(f"{name:42}{a * scale:>10.2f}{b * scale:>10.2f}{ratio:>8.2f}")


def threads_note(args):
    return f"{args.threads} threads each"


if __name__ == "__main__":
    main()
