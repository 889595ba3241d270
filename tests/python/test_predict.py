"""Using models from Python's sqlite3 across connections: two connections
give identical predictions from the same model; a connection sees the new
weights as soon as another one has retrained the model (its cache follows
cnn_models.version); an interrupt during cnn_train keeps the completed
epochs, which cnn_history shows and cnn_predict uses; an interrupt stops a
long cnn_predictions.

Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come from the
environment. Plain asserts: any failure ends the script with a nonzero status.
"""
import json
import os
import sqlite3
import tempfile
import threading
import time

from cnntest import DATA, ROWS, SMALL, connect, one, train

TEST = "SELECT image, label FROM mnist_test WHERE id < 300 ORDER BY id"
SLOW = 1  # time limits are multiplied by this (set in main)


def scalar_predictions(conn, name):
    return [r[0] for r in conn.execute(
        "SELECT cnn_predict(?, image) FROM mnist_test WHERE id < 300 ORDER BY id", (name,))]


def batch_predictions(conn, name):
    rows = conn.execute("SELECT idx, predicted FROM cnn_predictions(?, ?)", (name, TEST)).fetchall()
    assert [r[0] for r in rows] == list(range(300)), rows[:3]
    return [r[1] for r in rows]


def probas(conn, name):
    return [r[0] for r in conn.execute(
        "SELECT cnn_predict_proba(?, image) FROM mnist_test WHERE id < 300 ORDER BY id", (name,))]


def test_two_connections(path):
    a, b = connect(path), connect(path)
    assert one(a, "SELECT cnn_import_mnist(?)", DATA) == 70000
    assert one(a, "SELECT cnn_create('small', ?, 1)", SMALL) == 13610
    assert train(a, "small", ROWS, epochs=2, seed=1, threads=1)["epochs"] == 2

    # The same model gives the same answers in both connections, scalar and
    # batched, and the default model (the one trained last) is this one.
    pa, pb = scalar_predictions(a, "small"), scalar_predictions(b, "small")
    assert pa == pb and all(0 <= p <= 9 for p in pa), pa[:10]
    assert batch_predictions(a, "small") == pa and batch_predictions(b, "small") == pa
    assert probas(a, "small") == probas(b, "small")
    assert [r[0] for r in b.execute(
        "SELECT cnn_predict(image) FROM mnist_test WHERE id < 300 ORDER BY id")] == pa
    labels = [r[0] for r in a.execute("SELECT label FROM mnist_test WHERE id < 300 ORDER BY id")]
    accuracy = sum(p == y for p, y in zip(pa, labels)) / len(labels)
    assert accuracy > 0.75, accuracy
    old_proba = probas(b, "small")
    version = one(b, "SELECT version FROM cnn_models WHERE name = 'small'")

    # Connection a trains on: b's cached copy is stale and must reload.
    assert train(a, "small", "SELECT image, label FROM mnist_train WHERE id BETWEEN 2000 AND 5999",
                 epochs=1, seed=2, threads=1)["epochs"] == 3
    assert one(b, "SELECT version FROM cnn_models WHERE name = 'small'") > version
    new_a, new_b = probas(a, "small"), probas(b, "small")
    assert new_a == new_b, "b still uses the old weights"
    assert new_b != old_proba, "retraining changed nothing"
    assert scalar_predictions(b, "small") == scalar_predictions(a, "small")
    assert batch_predictions(b, "small") == scalar_predictions(a, "small")
    # b sees a's history and evaluates with the new weights.
    assert [r[0] for r in b.execute("SELECT epoch FROM cnn_history('small')")] == [1, 2, 3]
    ev_a = json.loads(one(a, "SELECT cnn_evaluate('small', ?)", TEST))
    ev_b = json.loads(one(b, "SELECT cnn_evaluate('small', ?)", TEST))
    assert ev_a == ev_b and ev_a["count"] == 300, (ev_a, ev_b)

    # Dropped and recreated under the same name by a: b follows too.
    one(a, "SELECT cnn_drop('small')")
    try:
        one(b, "SELECT cnn_predict('small', zeroblob(784))")
        raise AssertionError("predicted with a dropped model")
    except sqlite3.OperationalError as e:
        assert str(e) == "cnn_predict: no model named 'small'", e
    assert one(a, "SELECT cnn_create('small', ?, 5)", SMALL) == 13610
    assert probas(b, "small") == probas(a, "small") != new_a
    # Even when the new model has been written exactly like the old one (same
    # spec, never trained: the same number of writes), only its weights differ.
    fresh = probas(b, "small")
    one(a, "SELECT cnn_drop('small')")
    assert one(a, "SELECT cnn_create('small', ?, 6)", SMALL) == 13610
    assert probas(b, "small") == probas(a, "small") != fresh
    a.close()
    b.close()


def test_interrupt_training(path):
    conn = connect(path)
    watcher = connect(path)
    assert one(conn, "SELECT cnn_create('long', ?, 1)", SMALL) == 13610
    # Interrupt once two epochs are committed, as another connection sees.
    fired = []

    def interrupt_after_two_epochs():
        poll = connect(path)
        deadline = time.time() + 600
        while time.time() < deadline:
            if one(poll, "SELECT count(*) FROM cnn_history('long')") >= 2:
                break
            time.sleep(0.05)
        poll.close()
        fired.append(time.time())
        conn.interrupt()

    thread = threading.Thread(target=interrupt_after_two_epochs)
    thread.start()
    try:
        train(conn, "long", "SELECT image, label FROM mnist_train WHERE id < 5000",
              epochs=50, seed=1, threads=1)
        raise AssertionError("training was not interrupted")
    except sqlite3.OperationalError as e:
        stopped = time.time()
        assert "interrupted" in str(e), e
    thread.join()
    assert fired and stopped - fired[0] < 2.0 * SLOW, stopped - fired[0]

    # The completed epochs are committed: the history shows them (to this and
    # another connection), the counters agree, and the weights load.
    epochs = one(conn, "SELECT epochs FROM cnn_models WHERE name = 'long'")
    history = [r[0] for r in watcher.execute("SELECT epoch FROM cnn_history WHERE model = 'long'")]
    assert 2 <= epochs < 50, epochs
    assert history == list(range(1, epochs + 1)), (history, epochs)
    assert one(conn, "SELECT count(*) FROM cnn_history('long')") == epochs
    pred = [r[0] for r in conn.execute(
        "SELECT cnn_predict('long', image) FROM mnist_test WHERE id < 100 ORDER BY id")]
    assert all(0 <= p <= 9 for p in pred)
    assert pred == [r[0] for r in watcher.execute(
        "SELECT cnn_predict('long', image) FROM mnist_test WHERE id < 100 ORDER BY id")]
    assert one(conn, "PRAGMA integrity_check") == "ok"
    # The connection works normally afterwards.
    assert one(conn, "SELECT count(*) FROM cnn_predictions('long', 'SELECT image FROM mnist_test LIMIT 10')") == 10
    conn.close()
    watcher.close()


def test_interrupt_predictions(path):
    conn = connect(path)
    # The notebook's model: 10000 predictions take seconds.
    one(conn, "SELECT cnn_create('nb', NULL, 1)")
    timer = threading.Timer(0.3, conn.interrupt)
    start = time.time()
    timer.start()
    try:
        conn.execute("SELECT count(*) FROM cnn_predictions('nb', 'mnist_test')").fetchall()
        raise AssertionError("predictions were not interrupted")
    except sqlite3.OperationalError as e:
        assert str(e) == "interrupted", e
    timer.join()
    assert time.time() - start < 2.0 * SLOW, time.time() - start
    assert one(conn, "SELECT count(*) FROM cnn_predictions('nb', 'SELECT image FROM mnist_test LIMIT 3')") == 3
    conn.close()


def main():
    global SLOW
    # Sanitizer builds run the kernels many times slower: wider time limits.
    probe = connect(":memory:")
    SLOW = 30 if "sanitize=1" in one(probe, "SELECT cnn_debug()") else 1
    probe.close()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "models.db")
        test_two_connections(path)
        test_interrupt_training(path)
        test_interrupt_predictions(path)
    print("test_predict: ok")


if __name__ == "__main__":
    main()
