"""The training-recipe benchmark: what the notebook's model reaches on MNIST,
with and without augmentation, against the best recipe (sql/best.sql), each
over several seeds, on the test set and on its harder copy (sql/hard.sql).

Runs, in this order, each seed in turn and each printed as it finishes:
  best      sql/best.sql (15 epochs), through the sqlite3 shell
  augment   the notebook's model, Adam, batch 32, 10 epochs, with AUGMENT
  decay     the same with Adam's rate decaying along a cosine (DECAY)
  notebook  the same without augmentation (the notebook as it is)
Every run validates on mnist_test after each epoch (cnn_history's
val_accuracy, the per-epoch test accuracy); an epoch's seconds include that
validation; so do its CPU seconds (of this process, or of the sqlite3 shell
that runs sql/best.sql, its final evaluation included), printed beside the
wall time because they vary far less on a shared machine. The first seed of every kind runs first (seed 1 with its predictions of the
photos of data/digits/), then the other seeds, so a run cut short still
compares them all. A kind's summary follows its last seed, and all of them
come again at the end: test accuracy (median and the values), seconds per
epoch (median over every epoch of every seed), accuracy on mnist_test_hard,
for the augmented runs the largest epoch-to-epoch drop of the test accuracy
after epoch 5; last the augmentation's cost (the notebook's epoch with and
without it).

Usage (through tests/bench/recipe.sh, which builds first):
  recipe.py --root . --so build/cnn.so [--db build/recipe-bench.db] [--seeds 3]
            [--first-seed S] [--rows N] [--epochs-scale F]
            [--only best,augment,decay,notebook]
--first-seed runs seeds S..seeds only (to finish a run cut short);
--rows trains on the first N training rows (the test sets stay whole);
--epochs-scale multiplies every run's epochs (at least 1).
"""
import argparse
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import time

# The notebook's model's augmentation: Keras' usual ImageDataGenerator settings.
AUGMENT = {"rotation": 10, "shift": 0.1, "zoom": 0.1}
PHOTOS = ("0.jpg", "1.jpg", "2.jpg", "3.jpg", "4.jpg", "4_alpha.png", "5.jpg", "5_chalk.jpg",
          "6.jpg", "7.jpg", "8.jpg", "9.jpg")
# Keras' default Adam rate, down to 1% of it along a cosine over every step
# of the run, so the last epochs settle instead of wandering.
DECAY = {"schedule": "cosine_decay", "initial_learning_rate": 0.001, "alpha": 0.01}
KINDS = ("best", "augment", "decay", "notebook")
TITLES = {"notebook": "notebook's model, {} epochs",
          "augment": "notebook's model + augmentation, {} epochs",
          "decay": "notebook's model + augmentation + cosine decay, {} epochs",
          "best": "best recipe (sql/best.sql), {} epochs"}


def say(*a):
    print(*a, flush=True)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def shell(args, db, script, params):
    """Runs an sql/ script through the sqlite3 shell from the repository root
    (the scripts load build/cnn and read data/), with .parameter values."""
    head = ".parameter init\n" + "".join(
        f".parameter set :{k} {v}\n" for k, v in params.items() if v is not None)
    with open(os.path.join(args.root, script), encoding="utf-8") as f:
        text = head + f.read()
    p = subprocess.run(["sqlite3", "-batch", db], input=text, cwd=args.root,
                       capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"{script} failed:\n{p.stderr[-2000:]}")
    return p.stdout


def history(conn, name):
    return conn.execute("SELECT epoch, val_accuracy, seconds FROM cnn_history(?) ORDER BY epoch",
                        (name,)).fetchall()


def run(args, conn, kind, seed, epochs):
    name = f"{kind}_{seed}"
    t = time.perf_counter()
    # CPU seconds of this process (the notebook's runs) or of the sqlite3 shell
    # (sql/best.sql): on a shared machine they vary far less than wall time.
    c, rc = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if kind == "best":
        # The shell writes while this connection is idle; it sees the result after.
        shell(args, args.db, "sql/best.sql",
              {"name": f"'{name}'", "seed": seed, "epochs": epochs, "rows": args.rows})
    else:
        conn.execute("SELECT cnn_create(?, NULL, ?)", (name, seed)).fetchone()
        options = {"epochs": epochs, "seed": seed, "validation": "mnist_test"}
        if kind in ("augment", "decay"):
            options["augment"] = AUGMENT
        source = "SELECT image, label FROM mnist_train ORDER BY id"
        if args.rows:
            source += f" LIMIT {args.rows}"
        if kind == "decay":
            rows = conn.execute(f"SELECT count(*) FROM ({source})").fetchone()[0]
            options["learning_rate"] = dict(DECAY, decay_steps=epochs * ((rows + 31) // 32))
        conn.execute("SELECT cnn_train(?, ?, ?)", (name, source, json.dumps(options))).fetchone()
    wall = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c + (ru.ru_utime - rc.ru_utime) + (ru.ru_stime - rc.ru_stime)
    acc = json.loads(conn.execute("SELECT cnn_evaluate(?, 'mnist_test')", (name,)).fetchone()[0])
    hard = json.loads(conn.execute("SELECT cnn_evaluate(?, 'mnist_test_hard')",
                                   (name,)).fetchone()[0])
    h = history(conn, name)
    r = {"name": name, "test": acc["accuracy"], "hard": hard["accuracy"],
         "val": [row[1] for row in h], "seconds": [row[2] for row in h], "wall": wall,
         "cpu": cpu / len(h)}
    say(f"  {kind} seed {seed}: test {r['test']:.4f}, hard {r['hard']:.4f}, "
        f"{statistics.median(r['seconds']):.1f} s/epoch (median of {len(h)}), "
        f"{r['cpu']:.1f} CPU s/epoch, {wall:.0f} s in all")
    say("    test accuracy per epoch: " + " ".join(f"{v:.4f}" for v in r["val"]))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=".")
    ap.add_argument("--so", default="build/cnn.so")
    ap.add_argument("--db", default="build/recipe-bench.db")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--rows", type=int)
    ap.add_argument("--epochs-scale", type=float, default=1.0)
    ap.add_argument("--only", default=",".join(KINDS))
    args = ap.parse_args()
    args.root = os.path.abspath(args.root)
    args.db = os.path.abspath(args.db)
    kinds = [k for k in KINDS if k in args.only.split(",")]
    if (not kinds or args.seeds < 1 or not 1 <= args.first_seed <= args.seeds or
            (args.rows is not None and args.rows < 1)):
        sys.exit("recipe.py: --only names best, augment, decay or notebook; "
                 "--seeds and --rows are positive, --first-seed at most --seeds")
    epochs = {k: max(1, round((15 if k == "best" else 10) * args.epochs_scale)) for k in KINDS}
    for k in KINDS:
        TITLES[k] = TITLES[k].format(epochs[k])

    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(args.db + suffix):
            os.remove(args.db + suffix)
    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(os.path.abspath(args.so))
    say(f"cpu: {cpu_model()}, {os.cpu_count()} logical CPUs")
    say("cnn_version(): " + conn.execute("SELECT cnn_version()").fetchone()[0])
    say("cnn_debug(): " + conn.execute("SELECT cnn_debug()").fetchone()[0])
    conn.execute("SELECT cnn_import_mnist(?)", (os.path.join(args.root, "data"),)).fetchone()
    shell(args, args.db, "sql/hard.sql", {})
    # The distortions alone: cnn_augment over the training rows, one thread.
    c = time.process_time()
    n = conn.execute("SELECT count(cnn_augment(image, ?, id)) FROM mnist_train",
                     (json.dumps(AUGMENT),)).fetchone()[0]
    say(f"augmentation alone ({json.dumps(AUGMENT)}): "
        f"{1e6 * (time.process_time() - c) / n:.1f} CPU us per image, {n} images")
    say(f"database {args.db}: MNIST and mnist_test_hard; training rows: {args.rows or 'all'}; "
        f"seeds {args.first_seed}..{args.seeds}; epochs {', '.join(f'{k} {epochs[k]}' for k in kinds)}")

    # The first seed of every kind first, so that a run cut short still
    # compares them.
    first = args.first_seed
    order = [(k, first) for k in kinds] + [(k, s) for k in kinds
                                           for s in range(first + 1, args.seeds + 1)]
    results = {k: [] for k in kinds}
    for kind, seed in order:
        say(f"{TITLES[kind]}, seed {seed}:")
        results[kind].append(run(args, conn, kind, seed, epochs[kind]))
        if seed == 1:
            photos(args, conn, kind)
        if seed == args.seeds:
            summary(kind, results[kind])

    say("")
    say(f"summary (test accuracy: median of the seeds; seconds per epoch: median of "
        "every epoch, validation included; CPU s/epoch: median over the seeds of each "
        "run's CPU seconds per epoch; loss: test - hard in points):")
    for kind in kinds:
        summary(kind, results[kind])
    if "augment" in results and "notebook" in results:
        a = statistics.median(s for r in results["augment"] for s in r["seconds"])
        n = statistics.median(s for r in results["notebook"] for s in r["seconds"])
        say(f"augmentation's cost, notebook's model: {n:.1f} -> {a:.1f} s/epoch "
            f"({100 * (a / n - 1):+.1f}%)")
        a = statistics.median(r["cpu"] for r in results["augment"])
        n = statistics.median(r["cpu"] for r in results["notebook"])
        say(f"  in CPU seconds: {n:.1f} -> {a:.1f} per epoch ({100 * (a / n - 1):+.1f}%)")


def summary(kind, rs):
    test = statistics.median(r["test"] for r in rs)
    hard = statistics.median(r["hard"] for r in rs)
    secs = statistics.median(s for r in rs for s in r["seconds"])
    cpu = statistics.median(r["cpu"] for r in rs)
    values = ", ".join(f"{r['test']:.4f}" for r in rs)
    say(f"  {TITLES[kind]}: test {test:.4f} (median of {values}), {secs:.1f} s/epoch, "
        f"{cpu:.1f} CPU s/epoch, "
        f"hard {hard:.4f} (loss {100 * (test - hard):.2f} points)")
    if kind in ("augment", "decay"):
        drops = []
        for r in rs:
            v = r["val"]
            drops.append(max([100 * (v[i - 1] - v[i]) for i in range(5, len(v))] or [0.0]))
        say("    largest epoch-to-epoch drop of test accuracy after epoch 5: " +
            ", ".join(f"{d:.2f}" for d in drops) + " points")


def photos(args, conn, kind):
    """The photos of data/digits/ as the kind's seed-1 model reads them."""
    out = []
    for photo in PHOTOS:
        with open(os.path.join(args.root, "data", "digits", photo), "rb") as f:
            blob = f.read()
        out.append(f"{photo} {conn.execute('SELECT cnn_predict(?, ?)', (f'{kind}_1', blob)).fetchone()[0]}")
    say("    photos: " + ", ".join(out))

if __name__ == "__main__":
    main()
