"""sql/best.sql and sql/hard.sql as a user runs them: through the sqlite3
shell from a directory holding build/ and data/, with shell parameters.

best.sql on a tiny subset (300 rows, 2 epochs): it creates and trains the
documented model with its schedule and augmentation, prints its history and
makes it the default model; run again it refuses to replace the model.
hard.sql: mnist_test_hard has every test row, its labels, images that differ
from the originals, identical bytes from a second run in another database,
and other bytes with another seed.
"""
import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile

from cnntest import DATA, ROOT, SO, connect, one


def scratch():
    d = tempfile.mkdtemp()
    os.symlink(os.path.dirname(SO), os.path.join(d, "build"))
    os.symlink(DATA, os.path.join(d, "data"))
    return d


def shell(cwd, script, params, expect_error=False):
    text = ".parameter init\n" + "".join(f".parameter set :{k} {v}\n" for k, v in params.items())
    with open(os.path.join(ROOT, "sql", script), encoding="utf-8") as f:
        text += f.read()
    p = subprocess.run(["sqlite3", "-batch", "mnist.db"], input=text, cwd=cwd,
                       capture_output=True, text=True, timeout=300)
    failed = p.returncode != 0 or "rror" in p.stderr
    if failed != expect_error:
        sys.exit(f"{script} {params}: exit {p.returncode}\n--- stdout:\n{p.stdout}\n"
                 f"--- stderr:\n{p.stderr[-3000:]}")
    return p


def digest(conn):
    h = hashlib.sha256()
    for row in conn.execute("SELECT id, image, label FROM mnist_test_hard ORDER BY id"):
        h.update(repr(row).encode())
    return h.hexdigest()


def test_best():
    d = scratch()
    try:
        p = shell(d, "best.sql", {"rows": 300, "epochs": 2, "val_rows": 200, "threads": 2})
        assert "batch_normalization_3" in p.stdout and "dropout" in p.stdout, p.stdout
        conn = connect(os.path.join(d, "mnist.db"))
        assert one(conn, "SELECT cnn_default()") == "best"
        # cnn_predict(image) without a name reads the photos with it
        for photo in sorted(os.listdir(os.path.join(DATA, "digits"))):
            if photo.endswith((".jpg", ".png")):
                blob = open(os.path.join(DATA, "digits", photo), "rb").read()
                assert one(conn, "SELECT cnn_predict(?)", blob) == \
                    one(conn, "SELECT cnn_predict('best', ?)", blob), photo
        assert one(conn, "SELECT cnn_predict_proba(?)", blob) == \
            one(conn, "SELECT cnn_predict_proba('best', ?)", blob)
        spec = one(conn, "SELECT spec FROM cnn_models WHERE name = 'best'")
        assert spec.count('"batchnorm"') == 4 and spec.count('"conv2d"') == 3, spec
        assert one(conn, "SELECT params FROM cnn_models WHERE name = 'best'") == 242602
        rows = conn.execute("SELECT epoch, samples, learning_rate, val_accuracy "
                            "FROM cnn_history('best') ORDER BY epoch").fetchall()
        assert [(r[0], r[1]) for r in rows] == [(1, 300), (2, 300)], rows
        # the cosine decay over the whole run (5 updates per epoch: steps 0..9), from
        # 0.002 down to 1% of it; each epoch logs the rate of its last update
        def rate(step):
            return 0.002 * (0.99 * 0.5 * (1 + math.cos(math.pi * step / 10)) + 0.01)
        assert [round(r[2], 9) for r in rows] == [round(rate(4), 9), round(rate(9), 9)], rows
        assert all(r[3] is not None for r in rows), rows
        # the training images differ from the stored ones: augmentation is on
        assert one(conn, "SELECT count(*) FROM mnist_train") == 60000
        conn.close()
        p = shell(d, "best.sql", {"rows": 300, "epochs": 1}, expect_error=True)
        assert "cnn_create: a model named 'best' already exists" in p.stderr, p.stderr
        p = shell(d, "best.sql", {"rows": 300, "epochs": 1, "name": "'other'", "seed": 2,
                                  "val_rows": 100})
        conn = connect(os.path.join(d, "mnist.db"))
        assert one(conn, "SELECT cnn_default()") == "other"
        assert one(conn, "SELECT count(*) FROM cnn_history('other')") == 1
    finally:
        shutil.rmtree(d)


def test_hard():
    a, b = scratch(), scratch()
    try:
        shell(a, "hard.sql", {})
        shell(b, "hard.sql", {})
        ca, cb = connect(os.path.join(a, "mnist.db")), connect(os.path.join(b, "mnist.db"))
        assert one(ca, "SELECT count(*) FROM mnist_test_hard") == 10000
        assert one(ca, "SELECT count(*) FROM mnist_test_hard h JOIN mnist_test t USING (id) "
                       "WHERE h.label = t.label AND length(h.image) = 784") == 10000
        same = one(ca, "SELECT count(*) FROM mnist_test_hard h JOIN mnist_test t USING (id) "
                       "WHERE h.image = t.image")
        assert same == 0, same
        assert digest(ca) == digest(cb)
        # a refill replaces the table; another seed gives other images
        shell(b, "hard.sql", {"seed": 1})
        assert one(cb, "SELECT count(*) FROM mnist_test_hard") == 10000
        assert digest(ca) != digest(cb)
        shell(b, "hard.sql", {"seed": 0})
        assert digest(ca) == digest(cb)
    finally:
        shutil.rmtree(a)
        shutil.rmtree(b)


if __name__ == "__main__":
    test_best()
    test_hard()
    print("ok")
