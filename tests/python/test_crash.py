"""Process faults during cnn_train: kill -9 at random moments, Ctrl-C in the
sqlite3 shell and sqlite3_interrupt from another thread.

kill -9: a child process trains a small model for many epochs and is killed
at a random moment (before its first commit, inside an epoch, inside a
commit; some rounds aim at a commit by watching the journal or the WAL).
Rounds alternate journal_mode WAL/DELETE and synchronous NORMAL/FULL. After
each kill the database must pass integrity_check, its counters and history
must agree, and the stored weights and optimizer state must be bit for bit
those of a reference model trained (with the same seed) to the same epoch
count: a committed epoch is whole, an uncommitted one leaves no trace.
Training then resumes and must reach the reference's next epoch exactly.
This relies on seeded training being reproducible across calls (epoch e
shuffles from (seed, e)), which the test checks first.

Interrupts: Ctrl-C in the shell and conn.interrupt() in Python must end a
long epoch of the notebook's model within a second (within a batch and a half
under a sanitizer, whose batches take seconds) and keep the completed epochs
untouched. An interrupt that arrives while an epoch commits (fired from a
trace callback at each statement of the commit in turn), or while
cnn_import_mnist commits, must leave the commit whole or undone, a message
that counts what was saved, and the connection outside any transaction.

Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come from the
environment. CNN_CRASH_ROUNDS (20) sets the number of kill rounds,
CNN_CRASH_SEED the random seed of their timing (printed, to replay a run),
CNN_CRASH_VERBOSE=1 prints a line per round.
"""
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

from cnntest import DATA, SMALL, SO, connect, one, train

ROUNDS = int(os.environ.get("CNN_CRASH_ROUNDS", "20"))
VERBOSE = os.environ.get("CNN_CRASH_VERBOSE") == "1"
TIMING_SEED = int(os.environ.get("CNN_CRASH_SEED", str(random.randrange(1 << 30))))
ROWS = 1500
BATCHES = (ROWS + 31) // 32  # batch_size 32
TRAIN_SEED = 11

# The child: trains until killed. Its stderr goes to a file the parent shows
# if it ever dies on its own.
CHILD = """
import sqlite3, sys
path, so, sync, options = sys.argv[1:]
c = sqlite3.connect(path, isolation_level=None, timeout=30)
c.enable_load_extension(True)
c.load_extension(so)
c.execute("PRAGMA synchronous=" + sync)
c.execute("SELECT cnn_train('m', 'src', ?)", (options,)).fetchone()
"""


def digest(conn, name):
    """Everything training stores for a model except its version and times."""
    h = hashlib.sha256()
    h.update(repr(conn.execute("SELECT spec, params, optimizer, step, epochs FROM cnn_models "
                               "WHERE name = ?", (name,)).fetchone()).encode())
    for r in conn.execute("SELECT idx, name, shape, data FROM cnn_weights WHERE model = ? "
                          "ORDER BY idx", (name,)):
        h.update(repr(r[:3]).encode())
        h.update(r[3])
    for r in conn.execute("SELECT slot, name, idx, data FROM cnn_optimizer_state WHERE model = ? "
                          "ORDER BY slot, idx", (name,)):
        h.update(repr(r[:3]).encode())
        h.update(r[3])
    return h.hexdigest()


def history(conn, name):
    """History rows without the wall time, which no two runs share."""
    return conn.execute("SELECT epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, samples "
                        "FROM cnn_epochs WHERE model = ? ORDER BY epoch", (name,)).fetchall()


class Reference:
    """The model trained one epoch per call in its own database: the digest
    and history after each epoch, extended on demand."""

    def __init__(self, template, path, source="src"):
        shutil.copy(template, path)
        self.conn = connect(path)
        self.source = source
        self.digests = [digest(self.conn, "m")]
        self.seconds = []

    def upto(self, epochs):
        while len(self.digests) <= epochs:
            start = time.time()
            r = train(self.conn, "m", self.source, epochs=1, seed=TRAIN_SEED)
            self.seconds.append(time.time() - start)
            assert r["epochs"] == len(self.digests), r
            self.digests.append(digest(self.conn, "m"))
        return self.digests[epochs], history(self.conn, "m")[:epochs]


def wal_torn(path):
    """True when the WAL ends in frames of a transaction that never wrote its
    commit frame (SQLite ignores them on recovery)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    if len(data) < 32:
        return len(data) > 0
    _, _, page, _, salt1, salt2, _, _ = struct.unpack(">8I", data[:32])
    off, frames, commit = 32, 0, 0
    while off + 24 <= len(data):
        _, commit_size, s1, s2, _, _ = struct.unpack(">6I", data[off:off + 24])
        if (s1, s2) != (salt1, salt2):
            return frames > 0 and commit == 0
        if off + 24 + page > len(data):
            return True  # a frame cut in the middle
        frames, commit = frames + 1, commit_size
        off += 24 + page
    return frames > 0 and commit == 0


def wait_for_commit(path, wal, k, child, deadline, pause=0.0):
    """Waits for the start of the child's k-th commit: the rollback journal
    appearing, or the WAL growing after a quiet spell. Without a pause it
    busy-waits, to kill as close to that start as it can."""
    watched = path + ("-wal" if wal else "-journal")
    seen, present, size, changed = 0, False, 0, 0.0
    while time.time() < deadline and child.poll() is None:
        try:
            now_size = os.stat(watched).st_size
            now_present = True
        except FileNotFoundError:
            now_size, now_present = 0, False
        now = time.time()
        if wal:
            if now_size > size:
                if now - changed > 0.02:
                    seen += 1
                changed = now
            size = now_size
        else:
            if now_present and not present:
                seen += 1
            present = now_present
        if seen >= k:
            return True
        if pause:
            time.sleep(pause)
    return False


def commit_times(tmp, template, options):
    """When a child's first three commits start, from its launch: the kill
    window is sized from them (interpreter start, reading the source and the
    epochs as fast as this machine runs them now)."""
    path = os.path.join(tmp, "calibrate.db")
    shutil.copy(template, path)
    start = time.time()
    child = subprocess.Popen([sys.executable, "-c", CHILD, path, SO, "NORMAL", options])
    times = []
    for _ in range(3):
        # Polling gently: a busy parent would slow the child down.
        assert wait_for_commit(path, False, 1, child, start + 120, 0.001), "the child never committed"
        times.append(time.time() - start)
        while os.path.exists(path + "-journal") and child.poll() is None:
            time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return times


def kill_rounds(tmp, template):
    ref = Reference(template, os.path.join(tmp, "ref.db"))

    # Seeded training is reproducible across calls: three epochs at once
    # store exactly what three one-epoch calls store.
    shutil.copy(template, os.path.join(tmp, "once.db"))
    once = connect(os.path.join(tmp, "once.db"))
    r = train(once, "m", "src", epochs=3, seed=TRAIN_SEED)
    assert r["epochs"] == 3, r
    want_digest, want_history = ref.upto(3)
    assert history(once, "m") == want_history, (history(once, "m"), want_history)
    assert digest(once, "m") == want_digest, "3 epochs in one call differ from 3 calls of 1 epoch"
    once.close()

    options = json.dumps({"epochs": 100000, "seed": TRAIN_SEED})
    first, _, third = commit_times(tmp, template, options)
    window = third + (third - first)  # to the end of the fifth epoch
    rng = random.Random(TIMING_SEED)
    stats = {"before_first_commit": 0, "mid_training": 0, "aimed_at_commit": 0,
             "inside_write_transaction": 0, "max_epochs": 0}
    started = time.time()
    for i in range(ROUNDS):
        wal = i % 2 == 0
        sync = "NORMAL" if (i // 2) % 2 == 0 else "FULL"
        aimed = i % 5 == 4  # every combination of the two settings in turn
        path = os.path.join(tmp, f"round{i}.db")
        shutil.copy(template, path)
        setup = sqlite3.connect(path, isolation_level=None)
        assert one(setup, "PRAGMA journal_mode=" + ("WAL" if wal else "DELETE")) == ("wal" if wal else "delete")
        setup.close()

        log = open(os.path.join(tmp, f"round{i}.log"), "wb")
        child = subprocess.Popen([sys.executable, "-c", CHILD, path, SO, sync, options], stderr=log)
        if aimed:
            stats["aimed_at_commit"] += 1
            k = rng.randint(1, 3)
            assert wait_for_commit(path, wal, k, child, time.time() + 120), \
                f"round {i}: no commit {k} seen"
            how = f"at commit {k}"
        else:
            delay = rng.uniform(0, window)
            time.sleep(delay)
            how = f"after {delay:.3f} s"
        assert child.poll() is None, open(log.name).read()
        child.send_signal(signal.SIGKILL)
        child.wait()
        log.close()
        inside = wal_torn(path + "-wal") if wal else os.path.exists(path + "-journal")
        stats["inside_write_transaction"] += inside

        conn = connect(path)
        assert one(conn, "PRAGMA integrity_check") == "ok"
        epochs, step = conn.execute("SELECT epochs, step FROM cnn_models WHERE name = 'm'").fetchone()
        assert step == epochs * BATCHES, (i, epochs, step)
        want_digest, want_history = ref.upto(epochs)
        got_history = history(conn, "m")
        assert [h[0] for h in got_history] == list(range(1, epochs + 1)), (i, epochs, got_history)
        assert got_history == want_history, (i, got_history, want_history)
        assert digest(conn, "m") == want_digest, f"round {i}: stored model differs from epoch {epochs}"
        stats["before_first_commit" if epochs == 0 else "mid_training"] += 1
        stats["max_epochs"] = max(stats["max_epochs"], epochs)
        if VERBOSE:
            print(f"round {i}: {'WAL' if wal else 'DELETE'} {sync}, killed {how}: {epochs} epochs"
                  f"{', transaction in flight' if inside else ''}")

        # Training resumes exactly where the last commit left it.
        r = train(conn, "m", "src", epochs=1, seed=TRAIN_SEED)
        assert r["epochs"] == epochs + 1, (i, r, epochs)
        want_digest, want_history = ref.upto(epochs + 1)
        assert history(conn, "m") == want_history, i
        assert digest(conn, "m") == want_digest, f"round {i}: resumed epoch {epochs + 1} differs"
        assert one(conn, "PRAGMA integrity_check") == "ok"
        conn.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    print(f"kill -9: {ROUNDS} rounds (timing seed {TIMING_SEED}) in {time.time() - started:.1f} s; "
          f"random kills within {window:.2f} s of the start (first commit at {first:.2f} s, "
          f"third at {third:.2f} s); "
          f"{stats['before_first_commit']} before the first commit, {stats['mid_training']} "
          f"mid-training, {stats['aimed_at_commit']} aimed at a commit, "
          f"{stats['inside_write_transaction']} found a transaction in flight; "
          f"max epochs reached {stats['max_epochs']}")
    ref.conn.close()


def latency_bound(batch_s):
    """Training checks for an interrupt after every batch. An optimised build
    must stop within a second; one instrumented by a sanitizer runs a batch
    of this model in seconds, so there it must stop within a batch and a half."""
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        return max(1.0, 1.5 * batch_s)
    return 1.0


def ctrl_c(path):
    """Ctrl-C in the sqlite3 shell during a long epoch of the notebook's model,
    after a short first call has committed one epoch."""
    watch = sqlite3.connect(path, isolation_level=None, timeout=30)
    shell = subprocess.Popen(["sqlite3", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    shell.stdin.write(f""".load {SO}
SELECT json_extract(cnn_train('big', 'SELECT image, label FROM mnist_train WHERE id < 500', '{{"epochs":1,"batch_size":128,"seed":1,"progress":true}}'), '$.epochs');
SELECT cnn_train('big', 'mnist_train', '{{"epochs":1,"batch_size":128,"seed":1,"progress":true}}');
SELECT 'not reached';
""".encode())
    shell.stdin.close()
    err = bytearray()
    marks = {}

    def read_stderr():
        # The progress bars tell where the shell is: "Epoch 1/1" and the
        # first call's final line end in newlines, batch lines only redraw.
        while True:
            chunk = os.read(shell.stderr.fileno(), 4096)
            if not chunk:
                break
            err.extend(chunk)
            now = time.time()
            if "first" not in marks and err.count(b"\n") >= 2:
                marks["first"] = now
            if "epoch" not in marks and b"Epoch 2/2\n" in err and b"/469 [" in err:
                marks["epoch"] = now
            if "message" not in marks and b"interrupted" in err:
                marks["message"] = now

    reader = threading.Thread(target=read_stderr)
    reader.start()
    deadline = time.time() + 600
    while "epoch" not in marks:
        assert time.time() < deadline and shell.poll() is None, bytes(err)
        time.sleep(0.01)
    # Reading 60000 rows and loading the model, before the long epoch began.
    prepare_s = marks["epoch"] - marks["first"]
    # The first call committed its epoch: that is what the interrupt must keep.
    assert one(watch, "SELECT epochs FROM cnn_models WHERE name = 'big'") == 1
    kept = digest(watch, "big")
    kept_history = history(watch, "big")
    batch_s = one(watch, "SELECT seconds / 4 FROM cnn_epochs WHERE model = 'big' AND epoch = 1")
    time.sleep(1.0)
    assert shell.poll() is None
    fired = time.time()
    shell.send_signal(signal.SIGINT)
    shell.wait(timeout=600)
    ended = time.time()
    reader.join()
    out = shell.stdout.read().decode()
    message = marks["message"] - fired
    exited = ended - fired
    bound = latency_bound(batch_s)
    print(f"Ctrl-C in the sqlite3 shell: message after {message * 1000:.0f} ms, "
          f"exit after {exited * 1000:.0f} ms (a batch takes {batch_s * 1000:.0f} ms; "
          f"bound {bound * 1000:.0f} ms)")
    assert out == "1\n", out
    last = bytes(err).split(b"\n")[-2].decode()
    assert last == "Runtime error near line 3: cnn_train: interrupted; 0 completed epochs saved (9)", \
        bytes(err)
    assert shell.returncode == 1, shell.returncode
    assert message < bound and exited < bound, (message, exited, bound)
    assert one(watch, "PRAGMA integrity_check") == "ok"
    assert one(watch, "SELECT epochs FROM cnn_models WHERE name = 'big'") == 1
    assert digest(watch, "big") == kept and history(watch, "big") == kept_history
    watch.close()
    return kept, kept_history, prepare_s, batch_s


def python_interrupt(path, kept, kept_history, prepare_s, batch_s):
    """conn.interrupt() from another thread during a long epoch."""
    conn = connect(path)
    outcome = {}

    def run():
        try:
            train(conn, "big", "mnist_train", epochs=1, batch_size=128, seed=1)
            outcome["result"] = "completed"
        except sqlite3.OperationalError as e:
            outcome["error"] = str(e)
        outcome["time"] = time.time()

    worker = threading.Thread(target=run)
    worker.start()
    # Well past reading the rows, as the shell took: inside the epoch.
    time.sleep(1.0 + 2 * prepare_s)
    assert worker.is_alive()
    fired = time.time()
    conn.interrupt()
    worker.join(timeout=600)
    latency = outcome["time"] - fired
    bound = latency_bound(batch_s)
    print(f"sqlite3_interrupt from another thread: error after {latency * 1000:.0f} ms "
          f"(bound {bound * 1000:.0f} ms)")
    assert outcome.get("error") == "cnn_train: interrupted; 0 completed epochs saved", outcome
    assert latency < bound, (latency, bound)
    assert one(conn, "PRAGMA integrity_check") == "ok"
    assert one(conn, "SELECT epochs FROM cnn_models WHERE name = 'big'") == 1
    assert digest(conn, "big") == kept and history(conn, "big") == kept_history
    conn.close()


def interrupt_in_commit(tmp, template):
    """An interrupt that arrives while an epoch commits, at each statement of
    the commit in turn (a trace callback fires it): the commit happens whole
    or not at all, the message counts the epochs really saved, and the
    connection is left outside any transaction, as it was before the call."""
    source = "SELECT image, label FROM src LIMIT 320"  # 10 batches of 32
    ref = Reference(template, os.path.join(tmp, "sweep-ref.db"), source)
    path = os.path.join(tmp, "sweep.db")
    failures = []
    position = 0
    while True:
        position += 1
        shutil.copy(template, path)
        conn = connect(path)
        state = {"commits": 0, "events": 0, "fired": None}

        def trace(sql):
            # Statements the extension runs are traced with a "-- " prefix;
            # an epoch's commit is a transaction (or a savepoint) of its own.
            # Interrupt inside the second.
            if state["fired"] or state["commits"] > 2:
                return
            if sql.startswith(("-- BEGIN", "-- SAVEPOINT")):
                state["commits"] += 1
            if state["commits"] == 2:
                state["events"] += 1
                if state["events"] == position:
                    state["fired"] = sql[3:50]
                    conn.interrupt()
                elif sql.startswith(("-- COMMIT", "-- RELEASE", "-- END")):
                    state["commits"] += 1  # past the commit: no more positions

        conn.set_trace_callback(trace)
        try:
            train(conn, "m", source, epochs=3, seed=TRAIN_SEED)
            message = None
        except sqlite3.OperationalError as e:
            message = str(e)
        conn.set_trace_callback(None)
        if not state["fired"]:
            assert message is None, message
            conn.close()
            break
        problems = []
        if conn.in_transaction:
            problems.append("the connection was left inside a transaction")
            conn.execute("ROLLBACK")
        other = sqlite3.connect(path, isolation_level=None)
        epochs, step = other.execute("SELECT epochs, step FROM cnn_models WHERE name = 'm'").fetchone()
        other.close()
        saved = f"cnn_train: interrupted; {epochs} completed epoch{'' if epochs == 1 else 's'} saved"
        if epochs not in (1, 2) or step != epochs * 10:
            problems.append(f"stored {epochs} epochs, step {step}")
        else:
            want_digest, want_history = ref.upto(epochs)
            if message != saved:
                problems.append(f"said {message!r} with {epochs} epochs stored")
            if digest(conn, "m") != want_digest or history(conn, "m") != want_history:
                problems.append(f"stored model is not epoch {epochs}")
            r = train(conn, "m", source, epochs=1, seed=TRAIN_SEED)
            if r["epochs"] != epochs + 1 or digest(conn, "m") != ref.upto(epochs + 1)[0] \
                    or conn.in_transaction:
                problems.append("resuming did not give the next epoch, committed")
        if problems:
            failures.append(f"interrupt at statement {position} of a commit ({state['fired']}...): "
                            + "; ".join(problems))
        conn.close()
        os.remove(path)
    print(f"interrupt inside an epoch's commit: {position - 1} positions, {len(failures)} wrong")
    assert position - 1 >= 10, "the commit's statements were not seen"
    ref.conn.close()
    return failures


def interrupt_in_import_commit(tmp):
    """cnn_import_mnist interrupted as it commits: all or nothing, and the
    connection is left outside any transaction."""
    path = os.path.join(tmp, "import.db")
    conn = connect(path)
    fired = []

    def trace(sql):
        if not fired and sql.startswith(("-- RELEASE", "-- COMMIT", "-- END")):
            fired.append(sql)
            conn.interrupt()

    conn.set_trace_callback(trace)
    try:
        one(conn, "SELECT cnn_import_mnist(?)", DATA)
        message = None
    except sqlite3.OperationalError as e:
        message = str(e)
    conn.set_trace_callback(None)
    assert fired, "the import's commit was not seen"
    left_open = conn.in_transaction
    if left_open:
        conn.execute("ROLLBACK")
    tables = one(conn, "SELECT count(*) FROM sqlite_schema WHERE name IN ('mnist_train', 'mnist_test')")
    print(f"interrupt at cnn_import_mnist's commit: {message}; tables {tables}; "
          f"transaction left open: {left_open}")
    conn.close()
    failures = []
    if left_open:
        failures.append("cnn_import_mnist interrupted at its commit left the connection in a transaction")
    if (message, tables) not in ((None, 2), ("cnn_import_mnist: interrupted", 0)):
        failures.append(f"cnn_import_mnist interrupted at its commit: {message!r} with {tables} tables")
    return failures


def main():
    tmp = tempfile.mkdtemp()
    try:
        base = os.path.join(tmp, "base.db")
        conn = connect(base)
        assert one(conn, "SELECT cnn_import_mnist(?)", DATA) == 70000
        assert one(conn, "SELECT cnn_create('big', NULL, 5)") == 2990754
        conn.close()

        # The kill rounds' databases start as copies of a small template: the
        # model (epoch 0) and its training rows.
        template = os.path.join(tmp, "template.db")
        conn = connect(template)
        conn.execute("ATTACH ? AS base", (base,))
        conn.execute(f"CREATE TABLE src AS SELECT image, label FROM base.mnist_train WHERE id < {ROWS}")
        conn.execute("DETACH base")
        assert one(conn, "SELECT count(*) FROM src") == ROWS
        assert one(conn, "SELECT cnn_create('m', ?, 3)", SMALL) == 13610
        conn.close()

        kill_rounds(tmp, template)
        python_interrupt(base, *ctrl_c(base))
        failures = interrupt_in_commit(tmp, template) + interrupt_in_import_commit(tmp)
        assert not failures, "\n".join(failures)
        print("ok")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
