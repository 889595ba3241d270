"""One model, three hosts: Python's sqlite3, the sqlite3 shell and Node's
better-sqlite3 give identical answers, and a seeded training gives identical
weights in Python and in Node. Then what bindings that cannot interrupt a call
use: following a running training from another connection (the live
cnn_history, WAL) and the max_seconds budget.

Run by ctest with /usr/bin/python3 (Debian's; some Python builds, pyenv's or
macOS's system Python, lack enable_load_extension). CNN_SO, CNN_DATA and
CNN_ROOT come from the environment. The Node half goes through
tests/node/run.sh, which installs better-sqlite3 on first use.
"""
import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time

from cnntest import DATA, ROOT, ROWS, SMALL, SO, connect, one

NODE = os.path.join(ROOT, "tests", "node", "run.sh")

# The same model everywhere: spec, seed and training options. A seed and one
# thread make a run reproducible bit for bit (the seed alone does, whatever the
# thread count; one thread keeps it obvious).
SPEC = SMALL
SEED = 7
SOURCE = ROWS
OPTIONS = {"epochs": 1, "seed": 1, "threads": 1, "max_seconds": 600}
TEST_ROWS = 200
TEST_SOURCE = f"SELECT image, label FROM mnist_test WHERE id < {TEST_ROWS} ORDER BY id"


def without_seconds(result):
    return {k: v for k, v in result.items() if k != "seconds"}


def run(cmd, what, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n"
                             f"--- stdout\n{p.stdout}--- stderr\n{p.stderr}")
    return p.stdout


def python_predictions(conn):
    rows = conn.execute("SELECT idx, label, predicted, probability FROM cnn_predictions('m', ?)",
                        (TEST_SOURCE,)).fetchall()
    proba = [r[0] for r in conn.execute(
        "SELECT cnn_predict_proba('m', image) FROM mnist_test WHERE id < ? ORDER BY id", (TEST_ROWS,))]
    assert len(rows) == len(proba) == TEST_ROWS, (len(rows), len(proba))
    return [{"idx": i, "label": l, "predicted": p, "probability": q, "proba": proba[n]}
            for n, (i, l, p, q) in enumerate(rows)]


def shell_predictions(path):
    """The sqlite3 shell, loading the extension by path without its suffix."""
    so = SO[:-3] if SO.endswith(".so") else SO
    script = f"""
SELECT idx, label, predicted, printf('%.9g', probability) FROM cnn_predictions('m', '{TEST_SOURCE}');
.print --
SELECT cnn_predict_proba('m', image) FROM mnist_test WHERE id < {TEST_ROWS} ORDER BY id;
"""
    out = run(["sqlite3", "-batch", "-bail", "-cmd", f".load {so}", path], "the sqlite3 shell", input=script)
    table, proba = out.split("--\n")
    rows = [line.split("|") for line in table.splitlines()]
    proba = proba.splitlines()
    assert len(rows) == len(proba) == TEST_ROWS, (len(rows), len(proba), out[:500])
    return [{"idx": int(i), "label": int(l), "predicted": int(p), "probability": q, "proba": proba[n]}
            for n, (i, l, p, q) in enumerate(rows)]


def node_predictions(path, tmp):
    out = os.path.join(tmp, "node-predictions.json")
    run(["sh", NODE, "predict", path, "m", out], "Node (tests/node/run.sh predict)")
    with open(out) as f:
        doc = json.load(f)
    assert doc["model"] == "m" and len(doc["rows"]) == TEST_ROWS, doc.keys()
    return doc["rows"]


def check_same_predictions(tmp):
    """Train once in Python; predict from Python, the shell and Node."""
    path = os.path.join(tmp, "mnist.db")
    conn = connect(path)
    assert one(conn, "PRAGMA journal_mode=WAL") == "wal"
    assert one(conn, "SELECT cnn_import_mnist(?)", DATA) == 70000
    assert one(conn, "SELECT cnn_create('m', ?, ?)", SPEC, SEED) == 13610
    result = json.loads(one(conn, "SELECT cnn_train('m', ?, ?)", SOURCE, json.dumps(OPTIONS)))
    assert result["epochs_run"] == 1 and result["samples"] == 2000 and result["stopped"] == "completed", result
    export = hashlib.sha256(one(conn, "SELECT cnn_export('m')")).hexdigest()

    py = python_predictions(conn)
    correct = sum(r["label"] == r["predicted"] for r in py)
    assert correct > TEST_ROWS // 2, correct
    assert len({r["predicted"] for r in py}) >= 8, "too few classes predicted to compare meaningfully"
    for r in py:
        p = json.loads(r["proba"])
        assert len(p) == 10 and p.index(max(p)) == r["predicted"], r
        assert abs(max(p) - r["probability"]) <= 1e-6, r

    sh = shell_predictions(path)
    for a, b in zip(py, sh):
        assert (a["idx"], a["label"], a["predicted"]) == (b["idx"], b["label"], b["predicted"]), (a, b)
        assert "%.9g" % a["probability"] == b["probability"], (a, b)  # float32: 9 digits are exact
        assert a["proba"] == b["proba"], (a, b)

    nd = node_predictions(path, tmp)
    for a, b in zip(py, nd):
        assert (a["idx"], a["label"], a["predicted"]) == (b["idx"], b["label"], b["predicted"]), (a, b)
        assert a["probability"] == b["probability"], (a, b)  # the same double
        assert a["proba"] == b["proba"], (a, b)
    conn.close()
    return result, export, correct


def check_same_training(tmp, py_result, py_export):
    """Node trains the same model from the same seed: the same bytes."""
    job = os.path.join(tmp, "job.json")
    with open(job, "w") as f:
        json.dump({"model": "m", "spec": SPEC, "seed": SEED, "source": SOURCE, "options": OPTIONS}, f)
    out = run(["sh", NODE, "train", os.path.join(tmp, "node.db"), job], "Node (tests/node/run.sh train)")
    node = json.loads(out)
    assert node["export_sha256"] == py_export, (node, py_export)
    assert without_seconds(node["result"]) == without_seconds(py_result), (node["result"], py_result)


def check_follow(tmp):
    """A thread trains; another connection watches cnn_history grow."""
    path = os.path.join(tmp, "follow.db")
    trainer = connect(path)
    trainer.execute("PRAGMA journal_mode=WAL")  # readers see each epoch as it commits
    assert one(trainer, "SELECT cnn_import_mnist(?)", DATA) == 70000
    one(trainer, "SELECT cnn_create('w', ?, 5)", SPEC)
    watcher = connect(path)

    results = []
    t = threading.Thread(target=lambda: results.append(json.loads(one(
        trainer, "SELECT cnn_train('w', ?, '{\"epochs\": 5}')", SOURCE))))
    t.start()
    seen = []
    while t.is_alive():
        n = one(watcher, "SELECT count(*) FROM cnn_history('w')")
        if not seen or seen[-1] != n:
            seen.append(n)
        time.sleep(0.01)
    t.join()
    assert results and results[0]["epochs_run"] == 5, results
    last = watcher.execute("SELECT epoch, samples, loss > 0 FROM cnn_history('w') ORDER BY epoch DESC LIMIT 1").fetchone()
    assert last == (5, 2000, 1), last
    # The count only grows, and epochs were seen before the call returned.
    assert seen == sorted(seen) and seen[0] < 5, seen
    assert any(0 < n < 5 for n in seen), seen

    # max_seconds: 1000 epochs would take minutes; the budget stops the call
    # after the epoch in which one second runs out, every epoch saved.
    start = time.time()
    r = json.loads(one(trainer, "SELECT cnn_train('w', ?, '{\"epochs\": 1000, \"max_seconds\": 1}')", SOURCE))
    elapsed = time.time() - start
    assert r["stopped"] == "max_seconds" and 1 <= r["epochs_run"] < 1000, r
    assert r["epochs"] == 5 + r["epochs_run"], r
    assert elapsed < 1 + 3 * results[0]["seconds"] / 5 + 2, (elapsed, r)
    assert one(watcher, "SELECT max(epoch) FROM cnn_history('w')") == r["epochs"]
    trainer.close()
    watcher.close()
    return seen, r["epochs_run"]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        result, export, correct = check_same_predictions(tmp)
        check_same_training(tmp, result, export)
        seen, budget_epochs = check_follow(tmp)
    print(f"ok: Python, sqlite3 shell and Node agree on {TEST_ROWS} predictions ({correct} right) "
          f"and on the trained weights; history seen growing {seen}; "
          f"max_seconds stopped 1000 epochs after {budget_epochs}")


if __name__ == "__main__":
    main()
