"""The digit page's server (tools/serve.sh, tools/serve.py) without a
browser: many threads asking at once get the answers one thread gets; the
database is never written; a database without models, a missing database, a
file that is not a database, a missing extension and a port in use each
give a clear message, never a stack trace. The page itself is tested in a
real browser by tests/browser/test_page.mjs.
"""
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

from cnntest import DATA, ROOT, SMALL, SO, connect, train

SERVE = os.path.join(ROOT, "tools", "serve.sh")
EIGHT = open(os.path.join(DATA, "digits", "8.jpg"), "rb").read()


def start(*args, env=None):
    """The server on a free port: (process, host, port)."""
    p = subprocess.Popen(["sh", SERVE, *args, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "CNN_SO": SO,
                                                                 **(env or {})})
    out = ""
    while "open http://" not in out:
        line = p.stdout.readline()
        if not line:
            sys.exit(f"the server did not start:\n{out}{p.stderr.read()}")
        out += line
    url = out.split("open http://")[1].split("/")[0]
    host, port = url.rsplit(":", 1)
    return p, host, int(port)


def stop(p):
    p.terminate()
    _, err = p.communicate(timeout=30)
    assert "Traceback" not in err, err
    return err


def ask(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


def refused(args, expected, env=None):
    """The server refuses to start with a message containing expected."""
    p = subprocess.run(["sh", SERVE, *args], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "CNN_SO": SO, **(env or {})})
    assert p.returncode != 0 and expected in p.stderr and "Traceback" not in p.stderr, \
        (args, p.returncode, p.stderr)
    print("ok - refused:", p.stderr.strip())


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def main():
    tmp = tempfile.mkdtemp()
    try:
        db = os.path.join(tmp, "models.db")
        conn = connect(db)
        conn.execute("CREATE TABLE train AS SELECT image, label FROM cnn_mnist(?, ?) LIMIT 500",
                     (os.path.join(DATA, "train-images-idx3-ubyte.gz"),
                      os.path.join(DATA, "train-labels-idx1-ubyte.gz")))
        conn.execute("SELECT cnn_create('small', ?, 1)", (SMALL,))
        train(conn, "small", "train", epochs=1, seed=1)
        expected = json.loads(conn.execute("SELECT cnn_predict_proba('small', ?)",
                                           (EIGHT,)).fetchone()[0])
        conn.close()
        before = sha(db)

        p, host, port = start(db)
        try:
            assert host == "127.0.0.1", host
            answers, errors = [], []

            def client():
                try:
                    for _ in range(5):
                        status, kind, body = ask(port, "POST", "/api/predict", EIGHT)
                        assert status == 200 and kind == "application/json", (status, body)
                        answers.append(json.loads(body))
                        status, _, body = ask(port, "GET", "/api/models")
                        assert status == 200 and json.loads(body)["default"] == "small", body
                        status, _, body = ask(port, "GET", "/api/history.svg?model=small")
                        assert status == 200 and b"<svg" in body, status
                except Exception as e:  # reported by the main thread
                    errors.append(repr(e))

            threads = [threading.Thread(target=client) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            assert len(answers) == 40
            for a in answers:
                assert a["model"] == "small" and a["probabilities"] == expected, a
            print(f"ok - 8 threads, 40 predictions at once: each the single connection's answer "
                  f"({answers[0]['predicted']})")
            status, _, body = ask(port, "POST", "/api/predict", b"GIF89a" + b"\0" * 20)
            assert status == 400 and json.loads(body)["error"].startswith("cnn_predict_proba: "), body
            print("ok - a corrupt GIF:", json.loads(body)["error"])
        finally:
            stop(p)
        assert sha(db) == before, "the server wrote to the database"
        print("ok - the database is unchanged")

        empty = os.path.join(tmp, "empty.db")
        connect(empty).execute("CREATE TABLE t(x)").connection.close()
        p, _, port = start(empty)
        try:
            status, _, body = ask(port, "GET", "/api/models")
            assert status == 200 and json.loads(body) == {"models": [], "default": None}, body
            status, _, body = ask(port, "POST", "/api/predict", EIGHT)
            assert status == 404 and "has no model" in json.loads(body)["error"], body
            print("ok - a database without models:", json.loads(body)["error"])
        finally:
            stop(p)

        refused([os.path.join(tmp, "missing.db")], "no database")
        junk = os.path.join(tmp, "junk.db")
        with open(junk, "w") as f:
            f.write("not a database at all, but long enough to look at" * 20)
        refused([junk], "file is not a database")
        refused([db], "no extension at", env={"CNN_SO": os.path.join(tmp, "nowhere.so")})
        refused([db, "--port", "70000"], "--port must be 0..65535")
        p, _, port = start(db)
        try:
            refused([db, "--port", str(port)], f"cannot listen on 127.0.0.1 port {port}")
        finally:
            stop(p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
