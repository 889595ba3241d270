"""Inference in mixed precision: cnn_precision(name [, precision]) reads and
sets a model's inference precision for every connection; "bf16" runs
cnn_predict, cnn_predict_proba, cnn_predictions and cnn_evaluate with bf16
operands and fp32 sums (its dense kernels converted once), close to fp32;
back to "fp32" gives fp32's bits again. Where the CPU (or a capped level)
has no bf16 kernel, setting it is an error naming what is missing, and a
model set elsewhere fails clearly instead of running another precision;
"fp32" can always be set back. Bad arguments are clear errors.

Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come from the
environment.
"""
import json
import os
import sqlite3
import subprocess
import tempfile

import cnntest
from cnntest import DATA, SO, one, train

SPEC = json.dumps({"input": [28, 28, 1], "layers": [
    {"type": "conv2d", "filters": 8, "kernel": 3, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "conv2d", "filters": 16, "kernel": 3, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 200, "activation": "relu"},
    {"type": "dense", "units": 10}]})
TEST = "SELECT image, label FROM mnist_test WHERE id < 400"


def fails(conn, sql, *args):
    try:
        conn.execute(sql, args).fetchall()
    except sqlite3.Error as e:
        return str(e)
    raise AssertionError("no error from " + sql)


def probs(conn, name):
    rows = conn.execute(f"SELECT cnn_predict_proba(?, image) FROM ({TEST})", (name,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def batched(conn, name):
    rows = conn.execute("SELECT probability, predicted FROM cnn_predictions(?, ?)",
                        (name, TEST)).fetchall()
    return rows


def agree(a, b):
    top = sum(max(range(10), key=x.__getitem__) == max(range(10), key=y.__getitem__)
              for x, y in zip(a, b))
    diff = max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x, y))
    return top / len(a), diff


def sqlite3_shell(path, sql, env):
    out = subprocess.run(["sqlite3", path, f".load {SO}", sql], capture_output=True, text=True,
                         env=env)
    return out.returncode, out.stdout.strip(), out.stderr.strip()


def main():
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "p.db")
    conn = cnntest.connect(path)
    one(conn, "SELECT cnn_import_mnist(?)", DATA)
    one(conn, "SELECT cnn_create('m', ?, 11)", SPEC)
    train(conn, "m", "SELECT image, label FROM mnist_train WHERE id < 3000", epochs=1, seed=3)
    d = dict(line.split("=", 1) for line in one(conn, "SELECT cnn_debug()").splitlines()
             if "=" in line)

    # Reading, and what is refused.
    assert one(conn, "SELECT cnn_precision('m')") == "fp32"
    for sql, msg in (
            ("SELECT cnn_precision('m', 'fp16')", "precision must be 'fp32' or 'bf16'; got 'fp16'"),
            ("SELECT cnn_precision('m', 16)", "precision must be 'fp32' or 'bf16'; got an integer"),
            ("SELECT cnn_precision('m', NULL)", "precision must be 'fp32' or 'bf16'; got NULL"),
            ("SELECT cnn_precision('nope', 'fp32')", "no model named 'nope'"),
            ("SELECT cnn_precision('nope')", "no model named 'nope'"),
            ("SELECT cnn_precision(NULL)", "cnn_precision: ")):
        err = fails(conn, sql)
        assert msg in err and err.startswith("cnn_precision: "), (sql, err)

    fp32 = probs(conn, "m")
    fp32_batched = batched(conn, "m")
    fp32_eval = json.loads(one(conn, "SELECT cnn_evaluate('m', ?)", TEST))

    feats = d["cpu_features"].split()
    need = "amx" if "amx_bf16=1" in feats else "avx512"
    if d["gemm_bf16"] == "none (fp32)":
        if "amx_bf16=1" in feats or "avx512_bf16=1" in feats:
            want = f'precision "bf16" needs isa "{need}" or above on this CPU; here it is "{d["isa"]}"'
        else:
            want = 'precision "bf16" needs amx_bf16 or avx512_bf16, which this CPU lacks'
        err = fails(conn, "SELECT cnn_precision('m', 'bf16')")
        assert want in err, err
        assert one(conn, "SELECT cnn_precision('m')") == "fp32"
        assert probs(conn, "m") == fp32
        print(f"precision bf16: no bf16 kernel at isa {d['isa']} on this CPU, skipped: {err}")
        print("ok")
        return

    assert one(conn, "SELECT cnn_precision('m', 'bf16')") == "bf16"
    assert one(conn, "SELECT cnn_precision('m')") == "bf16"
    assert one(conn, "SELECT value FROM cnn_settings WHERE key = 'precision:m'") == "bf16"
    bf16 = probs(conn, "m")
    top, diff = agree(fp32, bf16)
    assert bf16 != fp32, "bf16 inference gave fp32's probabilities"
    assert top >= 0.98 and diff <= 0.05, (top, diff)
    # The batches (tiles over whole batches) and the single rows (the
    # converted kernels) agree closely, not bit for bit.
    b16 = batched(conn, "m")
    assert b16 != fp32_batched
    assert sum(p == q[1] for (_, p), q in zip(fp32_batched, b16)) >= 0.98 * len(b16)
    single_top = [max(range(10), key=x.__getitem__) for x in bf16]
    assert sum(a == b for a, (_, b) in zip(single_top, b16)) >= 0.99 * len(b16)
    ev = json.loads(one(conn, "SELECT cnn_evaluate('m', ?)", TEST))
    assert abs(ev["accuracy"] - fp32_eval["accuracy"]) <= 0.01, (ev, fp32_eval)
    assert abs(ev["loss"] - fp32_eval["loss"]) <= 0.02 * fp32_eval["loss"], (ev, fp32_eval)
    # Repeatable, and the same in another connection (the setting is stored).
    assert probs(conn, "m") == bf16
    other = cnntest.connect(path)
    assert one(other, "SELECT cnn_precision('m')") == "bf16"
    assert probs(other, "m") == bf16
    other.close()

    # A level without bf16 kernels: predictions refuse, fp32 can be set back.
    env = dict(os.environ, CNN_ISA="avx2")
    rc, out, err = sqlite3_shell(path, "SELECT cnn_predict('m', image) FROM mnist_test LIMIT 1", env)
    assert rc != 0 and ("cnn_predict: model 'm' is set to precision \"bf16\" (cnn_precision): "
                        f"precision \"bf16\" needs isa \"{need}\" or above on this CPU; here it is "
                        "\"avx2\"") in err, err
    rc, out, err = sqlite3_shell(path, "SELECT cnn_precision('m', 'bf16')", env)
    assert rc != 0 and err.find("cnn_precision: ") >= 0 and "precision \"bf16\" needs isa" in err, err
    rc, out, err = sqlite3_shell(path, "SELECT cnn_precision('m', 'fp32')", env)
    assert rc == 0 and out == "fp32", (rc, out, err)
    assert one(conn, "SELECT cnn_precision('m')") == "fp32"
    assert probs(conn, "m") == fp32, "back to fp32 should give fp32's bits"
    assert batched(conn, "m") == fp32_batched

    # Dropping a model drops its setting.
    one(conn, "SELECT cnn_precision('m', 'bf16')")
    one(conn, "SELECT cnn_drop('m')")
    assert one(conn, "SELECT count(*) FROM cnn_settings WHERE key = 'precision:m'") == 0
    print(f"precision bf16 ({d['gemm_bf16']}): top-1 agreement {top:.3f}, largest probability "
          f"difference {diff:.4f}; accuracy {ev['accuracy']:.4f} against fp32 {fp32_eval['accuracy']:.4f}")
    print("ok")


if __name__ == "__main__":
    main()
