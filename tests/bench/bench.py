"""The benchmark: sqlite-cnn against PyTorch on the same machine, in one run.

For each batch size: one epoch of the notebook's model (Adam, shuffled) on
the first TRAIN_ROWS training images, scaled to seconds per 60000-image
epoch; test accuracy after it; inference time per image with scalar
cnn_predict over the 10000 test rows and with cnn_predictions (batched);
peak resident memory of the training process; MNIST import time. Each
measurement runs in a fresh process; medians over --repeat runs.

Usage (through tests/bench/run.sh, which builds and installs what is needed):
  bench.py --so build/cnn.so --data data [--rows 60000] [--batches 32,128]
           [--threads 2] [--repeat 1] [--no-torch]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

PY = "/usr/bin/python3"
TORCH_ENV = {"OMP_WAIT_POLICY": "PASSIVE",
             "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"}

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
    name = f"bench_{batch}_{threads}"
    c.execute("SELECT cnn_drop(?) FROM cnn_models WHERE name = ?", (name, name)).fetchall() if \
        c.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'cnn_models'").fetchone()[0] else None
    c.execute("SELECT cnn_create(?, NULL, 1)", (name,)).fetchone()
    src = f"SELECT image, label FROM mnist_train WHERE id < {int(rows)}"
    r = json.loads(c.execute("SELECT cnn_train(?, ?, ?)", (name, src, json.dumps(
        {"epochs": 1, "batch_size": int(batch), "seed": 1, "threads": int(threads)}))).fetchone()[0])
    out["train_s"] = r["seconds"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["test_accuracy"] = json.loads(c.execute("SELECT cnn_evaluate(?, 'mnist_test')", (name,)).fetchone()[0])["accuracy"]
elif what == "predict":
    name = f"bench_{batch}_{threads}"
    c.execute("SELECT cnn_predict(?, image) FROM mnist_test LIMIT 1", (name,)).fetchall()
    t = time.perf_counter()
    c.execute("SELECT sum(cnn_predict(?, image)) FROM mnist_test", (name,)).fetchone()
    out["predict_us_scalar"] = (time.perf_counter() - t) / 10000 * 1e6
    t = time.perf_counter()
    c.execute("SELECT sum(predicted) FROM cnn_predictions(?, 'mnist_test')", (name,)).fetchone()
    out["predict_s_batched"] = time.perf_counter() - t
print(json.dumps(out))
"""


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(f"benchmark step failed: {' '.join(cmd[:3])}...\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def ours(args, db, what, batch=32):
    return run([PY, "-c", CHILD, args.so, db, str(args.rows), str(batch), str(args.threads), what, args.data])


def torch(args, batch):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(TORCH_ENV)
    here = os.path.dirname(os.path.abspath(__file__))
    return run([PY, os.path.join(here, "torch_mnist.py"), args.data, str(batch), str(args.threads),
                str(args.rows)], env)


def median(runs, key):
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else float("nan")


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
    db = os.path.join(tempfile.mkdtemp(), "bench.db")
    imp = [ours(args, db, "import") for _ in range(1)]
    rows = []
    for b in [int(x) for x in args.batches.split(",")]:
        mine = [ours(args, db, "train", b) for _ in range(args.repeat)]
        pred = [ours(args, db, "predict", b) for _ in range(args.repeat)]
        ref = [] if args.no_torch else [torch(args, b) for _ in range(args.repeat)]
        scale = 60000 / args.rows
        rows.append((f"train s/epoch, batch {b}", median(mine, "train_s") * scale, median(ref, "seconds_per_epoch")))
        rows.append((f"train us/sample, batch {b}", median(mine, "train_s") / args.rows * 1e6, median(ref, "us_per_sample")))
        rows.append((f"test accuracy after it", median(mine, "test_accuracy"), median(ref, "test_accuracy")))
        rows.append((f"peak RSS MB, batch {b}", median(mine, "peak_rss_mb"), median(ref, "peak_rss_mb")))
        if b == int(args.batches.split(",")[0]):
            rows.append(("predict us/image, scalar", median(pred, "predict_us_scalar"), median(ref, "predict_us_batch1")))
            rows.append(("predict s/10000, batched", median(pred, "predict_s_batched"), median(ref, "predict_s_10000_batched")))
    rows.append(("import MNIST s", median(imp, "import_s"), float("nan")))
    print(f"machine: {os.cpu_count()} cores, {threads_note(args)}; {args.rows} training rows, "
          f"median of {args.repeat}")
    print(f"{'':34}{'sqlite-cnn':>12}{'PyTorch':>12}{'ratio':>8}")
    for name, a, b in rows:
        ratio = a / b if b == b and b else float("nan")
        fmt = "{:>12.4f}" if abs(a) < 10 else "{:>12.1f}"
        print(f"{name:34}" + fmt.format(a) + ("{:>12.4f}" if abs(b) < 10 else "{:>12.1f}").format(b)
              + (f"{ratio:>8.2f}" if ratio == ratio else f"{'':>8}"))


def threads_note(args):
    return f"{args.threads} threads each"


if __name__ == "__main__":
    main()
