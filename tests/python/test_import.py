"""test_import.py - cnn.so from Python's sqlite3 module: loading (with and
without the .so suffix), cnn_import_mnist on the real MNIST files, the rows it
writes checked against the files read with Python's gzip module, and the
errors as sqlite3.OperationalError with their exact text.

Environment: CNN_SO (path to cnn.so), CNN_DATA (directory of the four MNIST
.gz files). Plain asserts: any failure ends the script with a nonzero status.
"""
import gzip
import os
import sqlite3
import tempfile
import time
import zlib

from cnntest import DATA, SO, connect

TRAIN_HIST = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_HIST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

# sqlite3's own defaults: implicit transactions (test_errors commits its own
# table), one thread, a 5 s busy timeout.
PLAIN = {"isolation_level": "", "check_same_thread": True, "timeout": 5.0}


def table_exists(db, name):
    sql = "SELECT count(*) FROM sqlite_schema WHERE name = ?"
    return db.execute(sql, (name,)).fetchone()[0] == 1


def error_of(db, sql, *args):
    """The message of the sqlite3.OperationalError that sql raises."""
    try:
        db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as e:
        return str(e)
    raise AssertionError("no error from " + sql)


def test_load_forms():
    # With the suffix, and without it as `.load ./cnn` does; both find the
    # entry point sqlite3_cnn_init from the file name.
    assert SO.endswith(".so"), SO
    for so in (SO, SO[: -len(".so")]):
        db = connect(so=so, **PLAIN)
        version = db.execute("SELECT cnn_version()").fetchone()[0]
        assert isinstance(version, str) and version, version
        db.close()


def test_import(tmp):
    path = os.path.join(tmp, "mnist.db")
    db = connect(path, **PLAIN)
    start = time.perf_counter()
    n = db.execute("SELECT cnn_import_mnist(?)", (DATA,)).fetchone()[0]
    seconds = time.perf_counter() - start
    assert n == 70000, n
    print("cnn_import_mnist: 70000 rows in %.2f s" % seconds)
    # Committed: another connection sees the rows.
    other = sqlite3.connect(path)
    assert other.execute("SELECT count(*) FROM mnist_train").fetchone()[0] == 60000
    assert other.execute("SELECT count(*) FROM mnist_test").fetchone()[0] == 10000
    other.close()

    for table, hist, count in (("mnist_train", TRAIN_HIST, 60000),
                               ("mnist_test", TEST_HIST, 10000)):
        rows = db.execute("SELECT label, count(*) FROM %s GROUP BY label ORDER BY label" % table)
        assert [c for _, c in rows] == hist, table
        span = db.execute("SELECT min(id), max(id), min(length(image)), max(length(image)) FROM "
                          + table).fetchone()
        assert span == (0, count - 1, 784, 784), (table, span)

    # Exact bytes: the first and the last image of each set, and every label.
    for table, stem in (("mnist_train", "train"), ("mnist_test", "t10k")):
        with gzip.open(os.path.join(DATA, stem + "-images-idx3-ubyte.gz")) as f:
            images = f.read()
        with gzip.open(os.path.join(DATA, stem + "-labels-idx1-ubyte.gz")) as f:
            labels = f.read()
        count = (len(images) - 16) // 784
        first = db.execute("SELECT image, label FROM %s WHERE id = 0" % table).fetchone()
        assert first[0] == images[16:16 + 784], table
        assert first[1] == labels[8], table
        last = db.execute("SELECT image FROM %s WHERE id = ?" % table, (count - 1,)).fetchone()[0]
        assert last == images[16 + (count - 1) * 784:], table
        stored = bytes(label for (label,) in db.execute("SELECT label FROM %s ORDER BY id" % table))
        assert stored == labels[8:], table

    # The streaming function agrees with the files too.
    row = db.execute("SELECT idx, image, label FROM cnn_mnist(?, ?) LIMIT 1",
                     (os.path.join(DATA, "t10k-images-idx3-ubyte.gz"),
                      os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))).fetchone()
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        assert row == (0, f.read(16 + 784)[16:], 7)
    db.close()


def test_errors(tmp):
    db = connect(os.path.join(tmp, "errors.db"), **PLAIN)
    db.execute("CREATE TABLE mnist_train(note TEXT)")
    db.execute("INSERT INTO mnist_train VALUES ('kept')")
    db.commit()

    missing = os.path.join(tmp, "nowhere")
    assert error_of(db, "SELECT cnn_import_mnist(?)", missing) == \
        "cnn_import_mnist: cannot open directory %s: No such file or directory" % missing
    assert error_of(db, "SELECT cnn_import_mnist(?)", None) == \
        "cnn_import_mnist: dir must be a text path; got NULL"
    assert error_of(db, "SELECT cnn_import_mnist(?)", 3) == \
        "cnn_import_mnist: dir must be a text path; got an integer"
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    assert error_of(db, "SELECT cnn_import_mnist(?)", empty) == \
        "cnn_import_mnist: no train-images-idx3-ubyte.gz or train-images-idx3-ubyte in " + empty

    # A corrupt test-images file (truncated gzip) among good ones: the error
    # names it and the record, and the old table is untouched.
    bad = os.path.join(tmp, "bad")
    os.mkdir(bad)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        os.symlink(os.path.join(DATA, name), os.path.join(bad, name))
    with open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        cut = f.read(100000)
    with open(os.path.join(bad, "t10k-images-idx3-ubyte.gz"), "wb") as f:
        f.write(cut)
    # How many whole records the cut-off stream still holds.
    got = zlib.decompressobj(wbits=31).decompress(cut)
    record = (len(got) - 16) // 784
    assert error_of(db, "SELECT cnn_import_mnist(?)", bad) == \
        ("cnn_import_mnist: t10k-images-idx3-ubyte.gz: truncated gzip data: "
         "ended in record %d of 10000" % record)
    assert db.execute("SELECT * FROM mnist_train").fetchall() == [("kept",)]
    assert not table_exists(db, "mnist_test")

    # An interrupt midway (here from the progress handler, after some
    # thousands of rows) rolls everything back and leaves no transaction open.
    calls = [0]

    def progress():
        calls[0] += 1
        return calls[0] > 200

    db.set_progress_handler(progress, 1000)
    assert error_of(db, "SELECT cnn_import_mnist(?)", DATA) == "cnn_import_mnist: interrupted"
    db.set_progress_handler(None, 0)
    assert calls[0] == 201, calls[0]
    assert not db.in_transaction
    assert db.execute("SELECT * FROM mnist_train").fetchall() == [("kept",)]
    assert not table_exists(db, "mnist_test")

    # cnn_mnist reports through the virtual table.
    assert error_of(db, "SELECT count(*) FROM cnn_mnist(?)", missing) == \
        "cnn_mnist: nowhere: cannot open: No such file or directory"
    assert error_of(db, "SELECT count(*) FROM cnn_mnist") == \
        "cnn_mnist: images_path argument is required: cnn_mnist(images_path [, labels_path])"
    db.close()


def test_waits_for_writer(tmp, so=SO):
    """Another connection holds the write lock for a moment (WAL): the import
    waits for it through the busy timeout instead of failing with "database
    is locked", and then replaces the tables whole."""
    import threading
    path = os.path.join(tmp, "busy.db")
    db = connect(path, so, timeout=20.0, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("SELECT cnn_import_mnist(?)", (DATA,)).fetchone()
    other = sqlite3.connect(path, isolation_level=None, timeout=20.0, check_same_thread=False)
    locked, done = threading.Event(), threading.Event()

    def hold():
        other.execute("BEGIN IMMEDIATE")
        other.execute("DELETE FROM mnist_test WHERE id < 5")
        locked.set()
        time.sleep(0.5)
        other.execute("COMMIT")
        done.set()

    t = threading.Thread(target=hold)
    t.start()
    assert locked.wait(20)
    db.execute("SELECT count(*) FROM mnist_train").fetchone()  # a read first
    assert db.execute("SELECT cnn_import_mnist(?)", (DATA,)).fetchone()[0] == 70000
    t.join()
    assert done.is_set()
    assert db.execute("SELECT count(*) FROM mnist_test").fetchone()[0] == 10000
    other.close()
    db.close()


def main():
    test_load_forms()
    with tempfile.TemporaryDirectory() as tmp:
        test_import(tmp)
        test_errors(tmp)
        test_waits_for_writer(tmp)
    print("test_import: ok")


if __name__ == "__main__":
    main()
