"""cnn_train from Python's sqlite3: results, continuing, early stopping, the
time budget, and durability: an interrupt from another thread and a killed
process both keep every completed epoch; another connection follows the
training live; inside a caller's transaction training joins it.

Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come from the
environment.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import cnntest
from cnntest import DATA, ROWS, SMALL, SO, one, train

TEST = "SELECT image, label FROM mnist_test WHERE id < 500"


def connect(path):
    # These connections leave extension loading on.
    return cnntest.connect(path, keep_loading=True)


def check_consistent(conn, name):
    """Counters, history and stored tensors agree after any stop."""
    epochs, step = conn.execute("SELECT epochs, step FROM cnn_models WHERE name = ?", (name,)).fetchone()
    hist = [r[0] for r in conn.execute("SELECT epoch FROM cnn_epochs WHERE model = ? ORDER BY epoch", (name,))]
    assert hist == list(range(1, epochs + 1)), (hist, epochs)
    assert one(conn, "PRAGMA integrity_check") == "ok"
    tensors = one(conn, "SELECT count(*) FROM cnn_weights WHERE model = ?", name)
    assert tensors == 4, tensors
    if epochs:
        slots = one(conn, "SELECT count(*) FROM cnn_optimizer_state WHERE model = ?", name)
        assert slots == 8, slots  # Adam: two arrays per tensor
    # The stored model loads and exports.
    assert len(one(conn, "SELECT cnn_export(?)", name)) > 50000
    return epochs, step


def main():
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "t.db")
    conn = connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    assert one(conn, "SELECT cnn_import_mnist(?)", DATA) == 70000

    # Train, then continue: epochs count on, the optimizer state carries over.
    assert one(conn, "SELECT cnn_create('m', ?, 1)", SMALL) == 13610
    r = train(conn, "m", ROWS, epochs=2, seed=1, validation=TEST)
    assert r["epochs_run"] == 2 and r["epochs"] == 2 and r["stopped"] == "completed", r
    assert r["accuracy"] > 0.75 and r["val_accuracy"] > 0.8, r
    r = train(conn, "m", ROWS, epochs=1, seed=1)
    assert r["epochs"] == 3, r
    epochs, step = check_consistent(conn, "m")
    assert (epochs, step) == (3, 3 * 63), (epochs, step)
    rows = conn.execute("SELECT epoch, samples, val_accuracy IS NOT NULL FROM cnn_epochs WHERE model='m'").fetchall()
    assert rows == [(1, 2000, 1), (2, 2000, 1), (3, 2000, 0)], rows

    # A seed reproduces a run exactly, whatever the thread count.
    for name, threads in (("s1", 1), ("s2", 2)):
        one(conn, "SELECT cnn_create(?, ?, 5)", name, SMALL)
        train(conn, name, ROWS, epochs=1, seed=9, threads=threads)
    assert one(conn, "SELECT cnn_export('s1') = cnn_export('s2')") == 1

    # Early stopping: nothing improves by min_delta 10, so patience 1 stops
    # after epoch 2 and restores epoch 1's weights.
    one(conn, "SELECT cnn_create('e', ?, 2)", SMALL)
    r = train(conn, "e", ROWS, epochs=20, seed=1, validation=TEST,
              early_stopping={"patience": 1, "min_delta": 10})
    assert r["epochs_run"] == 2 and r["stopped"] == "early_stopping" and r["restored_epoch"] == 1, r
    # With batchnorm the restored weights include the moving statistics: every
    # tensor equals that of the same run stopped after epoch 1.
    bn = json.dumps({"input": [28, 28, 1], "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "use_bias": False},
        {"type": "batchnorm", "momentum": 0.5},
        {"type": "activation", "activation": "relu"},
        {"type": "globalavgpool"},
        {"type": "dense", "units": 10}]})
    for name in ("bn_stop", "bn_one"):
        one(conn, "SELECT cnn_create(?, ?, 2)", name, bn)
    r = train(conn, "bn_stop", ROWS, epochs=20, seed=1, validation=TEST,
              early_stopping={"patience": 1, "min_delta": 10})
    assert r["restored_epoch"] == 1, r
    train(conn, "bn_one", ROWS, epochs=1, seed=1, validation=TEST)
    tensors = "SELECT group_concat(name || hex(data), ' ') FROM (SELECT * FROM cnn_weights WHERE model = ? ORDER BY idx)"
    assert "moving_variance" in one(conn, tensors, "bn_one")
    assert one(conn, tensors, "bn_stop") == one(conn, tensors, "bn_one")

    # The time budget stops after the epoch in which it runs out.
    one(conn, "SELECT cnn_create('t', ?, 3)", SMALL)
    start = time.time()
    r = train(conn, "t", ROWS, epochs=1000, max_seconds=0.5)
    # (an epoch of this model takes 20-40 ms: far fewer than the 1000 run)
    assert r["stopped"] == "max_seconds" and 1 <= r["epochs_run"] < 500, r
    assert 0.5 <= r["seconds"] < 5, r
    assert time.time() - start < 10

    # Interrupt from another thread: stops within a second, keeps epochs.
    one(conn, "SELECT cnn_create('i', ?, 4)", SMALL)
    fired = []
    spy = connect(path)

    def interrupt_after_first_epoch():
        # Mid-epoch, after at least one epoch committed, however slow the build.
        while one(spy, "SELECT epochs FROM cnn_models WHERE name = 'i'") < 1:
            time.sleep(0.01)
        time.sleep(0.1)
        fired.append(time.time())
        conn.interrupt()

    timer = threading.Thread(target=interrupt_after_first_epoch)
    timer.start()
    try:
        train(conn, "i", ROWS, epochs=500)
        raise AssertionError("training was not interrupted")
    except sqlite3.OperationalError as e:
        assert "interrupted" in str(e), e
        latency = time.time() - fired[0]
        assert latency < 1.0, latency
    timer.join()
    epochs, _ = check_consistent(conn, "i")
    assert epochs >= 1, epochs
    r = train(conn, "i", ROWS, epochs=1)
    assert r["epochs"] == epochs + 1, (r, epochs)

    # Another connection sees each epoch as it commits (WAL).
    reader = connect(path)
    seen = set()
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.add(one(reader, "SELECT count(*) FROM cnn_history WHERE model = 'i'") if has_vtab(reader)
                     else one(reader, "SELECT count(*) FROM cnn_epochs WHERE model = 'i'"))
            time.sleep(0.02)

    w = threading.Thread(target=watch)
    w.start()
    train(conn, "i", ROWS, epochs=4)
    done.set()
    w.join()
    assert len(seen) >= 3, seen  # intermediate counts were visible

    # Inside a caller's transaction training joins it: a rollback undoes it.
    before = one(conn, "SELECT epochs FROM cnn_models WHERE name = 'i'")
    conn.execute("BEGIN")
    train(conn, "i", ROWS, epochs=1)
    assert one(conn, "SELECT epochs FROM cnn_models WHERE name = 'i'") == before + 1
    conn.execute("ROLLBACK")
    assert one(conn, "SELECT epochs FROM cnn_models WHERE name = 'i'") == before
    check_consistent(conn, "i")
    # ... and in a writing statement it joins that statement.
    conn.execute("CREATE TABLE runs(result)")
    conn.execute("INSERT INTO runs SELECT cnn_train('i', ?, '{\"epochs\":1}')", (ROWS,))
    assert json.loads(one(conn, "SELECT result FROM runs"))["epochs"] == before + 1
    check_consistent(conn, "i")

    # Two connections training one model at once never interleave: the one
    # that saves second finds the model changed and stops.
    one(conn, "SELECT cnn_create('c', ?, 8)", SMALL)
    errors, results = [], []

    def rival():
        c2 = connect(path)
        try:
            results.append(train(c2, "c", ROWS, epochs=3, seed=2))
        except sqlite3.OperationalError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=rival) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) >= 1 and all("changed by another connection" in e for e in errors), (errors, results)
    epochs, step = check_consistent(conn, "c")
    assert step == epochs * 63, (epochs, step)

    # kill -9 during training: the database is intact, the model resumes.
    one(conn, "SELECT cnn_create('k', ?, 6)", SMALL)
    child = subprocess.Popen([sys.executable, "-c", f"""
import sqlite3
c = sqlite3.connect({path!r}, isolation_level=None, timeout=30)
c.enable_load_extension(True)
c.load_extension({SO!r})
c.execute("SELECT cnn_train('k', ?, '{{\\"epochs\\":1000}}')", ({ROWS!r},)).fetchone()
"""])
    deadline = time.time() + 60
    while one(conn, "SELECT epochs FROM cnn_models WHERE name = 'k'") < 2:
        assert time.time() < deadline and child.poll() is None
        time.sleep(0.05)
    time.sleep(0.13)  # somewhere inside an epoch (or a commit)
    child.send_signal(signal.SIGKILL)
    child.wait()
    after = connect(path)
    epochs, step = check_consistent(after, "k")
    assert epochs >= 2 and step == epochs * 63, (epochs, step)
    r = train(after, "k", ROWS, epochs=1)
    assert r["epochs"] == epochs + 1, r
    print("ok")


def has_vtab(conn):
    try:
        conn.execute("SELECT count(*) FROM cnn_history WHERE 0").fetchone()
        return True
    except sqlite3.OperationalError:
        return False


if __name__ == "__main__":
    main()
