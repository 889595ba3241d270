"""Streamed training ("data": "stream") with a second connection changing the
source while it trains: each epoch reads one snapshot, and a row that became
invalid, a deleted row, an altered or dropped table stop training with a
message naming the problem after the completed epochs were saved; the same
for a streamed validation table, whose messages say "validation". A streamed
cnn_evaluate reads one snapshot: a change committed by another connection in
the middle of it is not seen, and the next call reports it. Also: an
interrupt, a rollback-journal database, a caller's own transaction, rows
added meanwhile (not seen until the next call), and the same weights and
evaluation as in memory through Python's connections.

Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come from the
environment.
"""
import json
import os
import sqlite3
import tempfile
import threading
import time

import cnntest
from cnntest import DATA, SMALL, one, train

N = 1000  # rows of the streamed table: an epoch of SMALL takes a fraction of a second


def connect(path):
    return cnntest.connect(path, keep_loading=True)


def make_table(conn, name, rows=N):
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} AS SELECT image, label FROM mnist_train WHERE id < ?", (rows,))


def epochs_of(conn, model):
    return one(conn, "SELECT count(*) FROM cnn_epochs WHERE model = ?", model)


def consistent(conn, model):
    """The counters and the history agree: every saved epoch is whole."""
    epochs = one(conn, "SELECT epochs FROM cnn_models WHERE name = ?", model)
    hist = [r[0] for r in conn.execute("SELECT epoch FROM cnn_epochs WHERE model = ? ORDER BY epoch", (model,))]
    assert hist == list(range(1, epochs + 1)), (hist, epochs)
    return epochs


def change_mid_training(path, conn, model, table, change, expect, **options):
    """Trains `model` on `table` streamed for many epochs while another
    connection applies `change` once the first epoch is saved; training must
    stop with an error containing `expect`, the saved epochs intact."""
    one(conn, "SELECT cnn_create(?, ?, 1)", model, SMALL)
    other = connect(path)
    changed = []

    def act():
        while epochs_of(other, model) < 1:
            time.sleep(0.005)
        for sql in change:
            other.execute(sql)
        changed.append(epochs_of(other, model))

    t = threading.Thread(target=act)
    t.start()
    try:
        train(conn, model, table, epochs=500, data="stream", seed=3, **options)
        raise AssertionError(f"{model}: training went on after {change}")
    except sqlite3.OperationalError as e:
        assert expect in str(e), (model, str(e))
    t.join()
    saved = consistent(conn, model)
    # The change lands in the epoch that begins after it: the one running
    # when it was made still reads its own snapshot and is saved.
    assert saved >= changed[0] >= 1, (model, saved, changed)
    assert saved <= changed[0] + 2, (model, saved, changed)
    other.close()
    return saved


def evaluate(conn, model, table, data="stream"):
    return one(conn, "SELECT cnn_evaluate(?, ?, ?)", model, table, json.dumps({"data": data}))


def change_mid_evaluate(path, conn, model, table, change):
    """cnn_evaluate streams `table` while another connection applies `change`
    after its second batch (the second poll for interrupts: the first batch
    has been read, so the read transaction holds its snapshot). The result
    is the one before the change; returns the next call's result or error."""
    before = evaluate(conn, model, table)
    assert json.loads(before)["count"] > 3 * 128, before  # several batches
    other = connect(path)
    polls = []

    def on_statement(sql):
        # Statements run by the extension are traced with a "-- " prefix.
        if sql == "-- SELECT 1":
            polls.append(sql)
            if len(polls) == 2:
                for c in change:
                    other.execute(c)

    conn.set_trace_callback(on_statement)
    try:
        during = evaluate(conn, model, table)
    finally:
        conn.set_trace_callback(None)
    assert len(polls) > 2, polls
    assert during == before, (change, during, before)
    other.close()
    try:
        return evaluate(conn, model, table)
    except sqlite3.OperationalError as e:
        return str(e)


def main():
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "t.db")
    conn = connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    assert one(conn, "SELECT cnn_import_mnist(?)", DATA) == 70000

    # Streamed and in memory: the same weights, through Python's connections.
    make_table(conn, "rows")
    for m in ("mem", "str"):
        one(conn, "SELECT cnn_create(?, ?, 1)", m, SMALL)
    r1 = train(conn, "mem", "rows", epochs=2, seed=9, data="memory", validation="rows")
    r2 = train(conn, "str", "rows", epochs=2, seed=9, data="stream", validation="rows")
    assert (r1["data"], r2["data"]) == ("memory", "stream"), (r1, r2)
    assert (r1["loss"], r1["val_loss"]) == (r2["loss"], r2["val_loss"]), (r1, r2)
    assert one(conn, """SELECT count(*) FROM cnn_weights a JOIN cnn_weights b USING (idx)
                        WHERE a.model = 'mem' AND b.model = 'str' AND a.data = b.data""") == 4
    assert one(conn, "SELECT cnn_evaluate('mem', 'rows')") == one(conn, "SELECT cnn_evaluate('str', 'rows')")
    assert evaluate(conn, "mem", "rows", "stream") == evaluate(conn, "mem", "rows", "memory")
    assert json.loads(evaluate(conn, "mem", "rows", "stream"))["count"] == N

    # Changes by another connection in the middle of training.
    make_table(conn, "a")
    change_mid_training(path, conn, "null_label", "a", ["UPDATE a SET label = NULL WHERE rowid = 100"],
                        "source row 100: label must be an integer 0..9; got NULL")
    make_table(conn, "b")
    change_mid_training(path, conn, "short_image", "b", ["UPDATE b SET image = x'00' WHERE rowid = 200"],
                        "source row 200: image must be 784 raw bytes or an encoded image; got a 1-byte blob")
    make_table(conn, "c")
    change_mid_training(path, conn, "deleted", "c", ["DELETE FROM c WHERE rowid = 300"],
                        "source row 300 (rowid 300) is no longer in table c")
    make_table(conn, "d")
    change_mid_training(path, conn, "dropped", "d", ["DROP TABLE d"], "source table d: no such table: main.d")
    make_table(conn, "e")
    change_mid_training(path, conn, "altered", "e", ["ALTER TABLE e DROP COLUMN label"],
                        "no such column: label")

    # The same changes to a streamed validation table: found by the
    # validation after them, named as the validation source's.
    make_table(conn, "fixed")
    for t, change, expect in [
            ("va", "UPDATE va SET label = NULL WHERE rowid = 100",
             "validation source row 100: label must be an integer 0..9; got NULL"),
            ("vb", "UPDATE vb SET image = x'00' WHERE rowid = 200",
             "validation source row 200: image must be 784 raw bytes or an encoded image; got a 1-byte blob"),
            ("vc", "DELETE FROM vc WHERE rowid = 250", "validation source row 250 (rowid 250) is no longer in table vc"),
            ("vd", "DROP TABLE vd", "validation source table vd: no such table: main.vd"),
            ("ve", "ALTER TABLE ve DROP COLUMN label", "no such column: label")]:
        make_table(conn, t, rows=300)
        change_mid_training(path, conn, "val_" + t, "fixed", [change], expect, validation=t)

    # A streamed evaluation sees one snapshot; the next one sees the change.
    make_table(conn, "ea")
    assert change_mid_evaluate(path, conn, "mem", "ea", ["UPDATE ea SET label = NULL WHERE rowid = 900"]) == \
        "cnn_evaluate: source row 900: label must be an integer 0..9; got NULL"
    make_table(conn, "eb")
    assert change_mid_evaluate(path, conn, "mem", "eb", ["UPDATE eb SET image = x'0000' WHERE rowid = 900"]) == \
        "cnn_evaluate: source row 900: image must be 784 raw bytes or an encoded image; got a 2-byte blob"
    make_table(conn, "ec")
    r = change_mid_evaluate(path, conn, "mem", "ec", ["DELETE FROM ec WHERE rowid = 900"])
    assert json.loads(r)["count"] == N - 1, r
    make_table(conn, "ed")
    assert change_mid_evaluate(path, conn, "mem", "ed", ["DROP TABLE ed"]) == \
        "cnn_evaluate: source table: no such table: ed"
    make_table(conn, "ee")
    assert change_mid_evaluate(path, conn, "mem", "ee", ["ALTER TABLE ee DROP COLUMN label"]) == \
        "cnn_evaluate: source must give (image, label) columns; it gives 1"
    make_table(conn, "ef")
    assert change_mid_evaluate(path, conn, "mem", "ef", ["DELETE FROM ef"]) == "cnn_evaluate: source has no rows"

    # Rows added meanwhile are not seen: the rowids are listed when the call
    # starts, so every epoch has the same rows.
    make_table(conn, "f")
    one(conn, "SELECT cnn_create('grow', ?, 1)", SMALL)
    other = connect(path)

    def add():
        while epochs_of(other, "grow") < 1:
            time.sleep(0.005)
        other.execute("INSERT INTO f SELECT image, label FROM mnist_train WHERE id BETWEEN 5001 AND 5100")

    t = threading.Thread(target=add)
    t.start()
    r = train(conn, "grow", "f", epochs=4, data="stream")
    t.join()
    assert r["samples"] == N and r["epochs_run"] == 4, r
    assert {x[0] for x in conn.execute("SELECT samples FROM cnn_epochs WHERE model = 'grow'")} == {N}
    assert train(conn, "grow", "f", epochs=1, data="stream")["samples"] == N + 100

    # An interrupt from another thread: answered within a batch or two, the
    # completed epochs kept.
    one(conn, "SELECT cnn_create('intr', ?, 1)", SMALL)
    fired = []

    def interrupt():
        while epochs_of(other, "intr") < 1:
            time.sleep(0.005)
        time.sleep(0.05)
        fired.append(time.time())
        conn.interrupt()

    t = threading.Thread(target=interrupt)
    t.start()
    try:
        train(conn, "intr", "f", epochs=500, data="stream")
        raise AssertionError("training was not interrupted")
    except sqlite3.OperationalError as e:
        assert "interrupted;" in str(e) and "saved" in str(e), e
        assert time.time() - fired[0] < 1.0
    t.join()
    assert consistent(conn, "intr") >= 1

    # Inside the caller's own transaction the caller's connection is read:
    # rows it has not committed are trained on.
    conn.execute("BEGIN")
    conn.execute("INSERT INTO f SELECT image, label FROM mnist_train WHERE id BETWEEN 5101 AND 5150")
    assert train(conn, "grow", "f", epochs=1, data="stream")["samples"] == N + 150
    conn.execute("ROLLBACK")

    # A rollback-journal database: the reader's snapshot ends before each
    # epoch is committed, so nothing waits for anything.
    path2 = os.path.join(tmp, "journal.db")
    j = connect(path2)
    assert one(j, "PRAGMA journal_mode") == "delete"
    j.execute("ATTACH ? AS src", (path,))
    j.execute("CREATE TABLE rows AS SELECT image, label FROM src.rows")
    j.execute("DETACH src")
    one(j, "SELECT cnn_create('jr', ?, 1)", SMALL)
    start = time.time()
    r = train(j, "jr", "rows", epochs=3, data="stream", seed=9, validation="rows")
    assert r["epochs_run"] == 3 and time.time() - start < 30, r
    assert consistent(j, "jr") == 3
    # ... and an attached file database through its own file.
    j.execute("ATTACH ? AS src", (path,))
    one(j, "SELECT cnn_create('att', ?, 1)", SMALL)
    r = train(j, "att", "src.rows", epochs=2, data="stream", seed=9, validation="src.rows")
    assert r["loss"] == r2["loss"] and r["val_loss"] == r2["val_loss"], (r, r2)
    j.close()

    # An in-memory database through Python's (serialized) connection.
    mem = connect(":memory:")
    mem.execute("ATTACH ? AS src", (path,))
    mem.execute("CREATE TABLE rows AS SELECT image, label FROM src.rows")
    one(mem, "SELECT cnn_create('m', ?, 1)", SMALL)
    r = train(mem, "m", "main.rows", epochs=2, data="stream", seed=9, validation="rows")
    assert r["loss"] == r2["loss"] and r["val_loss"] == r2["val_loss"], (r, r2)
    mem.close()
    other.close()
    conn.close()
    print("test_stream: ok")


if __name__ == "__main__":
    main()
