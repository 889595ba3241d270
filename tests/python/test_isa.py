"""Kernels chosen at run time: cnn_debug() names the CPU, its features and
the kernel of each operation; the training option "isa" and the environment
variable CNN_ISA cap the instruction set; asking for one the CPU lacks is an
error naming the missing feature; the same training gives the same weights
bit for bit on any thread count within an instruction set and on avx2,
avx512 and amx (one FMA chain per element, the same k blocks), and close
weights on baseline (no FMA). Instruction sets this CPU cannot run are
printed as skipped.

Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come from the
environment.
"""
import json
import os
import subprocess

import cnntest
from cnntest import DATA, SMALL, SO, one, train

ISAS = ["baseline", "avx2", "avx512", "amx"]
ROWS = "SELECT image, label FROM mnist_train WHERE id < 600"


def debug(env=None):
    """cnn_debug() of a fresh sqlite3 process, as a dict."""
    out = subprocess.run(["sqlite3", ":memory:", f".load {SO}", "SELECT cnn_debug()"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def load_error(env):
    out = subprocess.run(["sqlite3", ":memory:", f".load {SO}", "SELECT 1"],
                         capture_output=True, text=True, env=env)
    return out.returncode, out.stderr.strip()


def main():
    d = debug()
    for key in ("build", "cpu", "cpu_features", "isa_cpu", "isa", "gemm", "im2col", "pooling",
                "optimizer", "activations"):
        assert key in d, (key, d)
    assert d["build"].startswith("portable"), d["build"]
    best = d["isa_cpu"]
    assert best in ISAS, best
    runs = ISAS[:ISAS.index(best) + 1]
    for isa in ISAS[len(runs):]:
        print(f"isa {isa}: not supported by this CPU, skipped")
    print("cpu:", d["cpu"], "| isa_cpu:", best, "| gemm:", d["gemm"])

    # The environment caps the choice; cnn_debug says what was picked.
    env = dict(os.environ)
    env["CNN_ISA"] = "baseline"
    capped = debug(env)
    assert capped["isa"] == "baseline" and capped["gemm"] == "baseline 4x8", capped
    env["CNN_ISA"] = "sse9"
    rc, err = load_error(env)
    assert rc != 0 and 'CNN_ISA=sse9: isa must be one of baseline, avx2, avx512, amx; got "sse9"' in err, err
    for isa in ISAS[len(runs):]:
        env["CNN_ISA"] = isa
        rc, err = load_error(env)
        assert rc != 0 and f'CNN_ISA={isa}: isa "{isa}" needs ' in err and "which this CPU lacks" in err, err

    conn = cnntest.connect()
    conn.execute("CREATE TABLE mnist_train AS SELECT idx AS id, image, label FROM cnn_mnist(?, ?)",
                 (os.path.join(DATA, "train-images-idx3-ubyte.gz"),
                  os.path.join(DATA, "train-labels-idx1-ubyte.gz")))
    # Bad values of the option, and sets this CPU lacks.
    for bad, msg in (('"sse9"', 'option isa must be one of baseline, avx2, avx512, amx; got "sse9"'),
                     ("2", "option isa must be one of baseline, avx2, avx512, amx; got 2")):
        try:
            one(conn, f"SELECT cnn_train('x', 'SELECT 1, 1', '{{\"isa\": {bad}}}')")
            raise AssertionError("accepted isa " + bad)
        except Exception as e:
            assert msg in str(e), str(e)
    for isa in ISAS[len(runs):]:
        one(conn, "SELECT cnn_create('lack', ?, 1)", SMALL)
        try:
            train(conn, "lack", ROWS, epochs=1, isa=isa)
            raise AssertionError("trained on " + isa)
        except Exception as e:
            assert f'cnn_train: option isa "{isa}" needs ' in str(e), str(e)
        one(conn, "SELECT cnn_drop('lack')")

    # One epoch of the same model, seed and rows on every set and 1 or 2
    # threads: the exported models (weights and Adam state) compared.
    blobs, losses = {}, {}
    for isa in runs:
        for threads in (1, 2):
            name = f"m_{isa}_{threads}"
            one(conn, "SELECT cnn_create(?, ?, 3)", name, SMALL)
            r = train(conn, name, ROWS, epochs=1, seed=5, threads=threads, isa=isa)
            # The option caps, as CNN_ISA does: the lower of the two runs.
            assert r["isa"] == ISAS[min(ISAS.index(isa), ISAS.index(d["isa"]))], r
            blobs[isa, threads] = one(conn, "SELECT cnn_export(?)", name)
            losses[isa, threads] = r["loss"]
            assert blobs[isa, threads] == blobs[isa, 1], f"{isa}: 2 threads differ from 1"
    vector = [isa for isa in runs if isa != "baseline"]
    for isa in vector[1:]:
        assert blobs[isa, 1] == blobs[vector[0], 1], f"{isa} differs from {vector[0]}"
    if vector:
        # baseline rounds each product before adding it: close, not equal.
        a, b = losses["baseline", 1], losses[vector[0], 1]
        assert abs(a - b) <= 1e-4 * abs(b), (a, b)
        pa = json.loads(one(conn, "SELECT cnn_predict_proba('m_baseline_1', image) FROM mnist_train WHERE id = 7"))
        pb = json.loads(one(conn, f"SELECT cnn_predict_proba('m_{vector[0]}_1', image) FROM mnist_train WHERE id = 7"))
        assert max(abs(x - y) for x, y in zip(pa, pb)) <= 1e-3, (pa, pb)
    print(f"same bits: {', '.join(vector)} (1 and 2 threads each); baseline within 1e-4 of the loss")

    # Mixed precision: bf16 products where the CPU has them, reproducible bit
    # for bit and for any thread count, close to fp32; a clear error where not.
    for bad, msg in (('"half"', 'option precision must be "fp32" or "bf16"; got "half"'),
                     ("16", 'option precision must be "fp32" or "bf16"; got 16')):
        try:
            one(conn, f"SELECT cnn_train('x', 'SELECT 1, 1', '{{\"precision\": {bad}}}')")
            raise AssertionError("accepted precision " + bad)
        except Exception as e:
            assert msg in str(e), str(e)
    one(conn, "SELECT cnn_create('p_avx2', ?, 3)", SMALL)
    feats = d["cpu_features"].split()
    cpu_bf16 = ISAS.index(best) >= ISAS.index("avx512") and (
        "amx_bf16=1" in feats or "avx512_bf16=1" in feats)
    if d["gemm_bf16"] == "none (fp32)":
        print(f"precision bf16: no bf16 kernel at isa {d['isa']} on this CPU, skipped")
        need = "amx" if "amx_bf16=1" in feats else "avx512"
        want = (f'option precision "bf16" needs isa "{need}" or above on this CPU; '
                f'the run\'s isa is "{d["isa"]}"'
                if cpu_bf16 else
                'option precision "bf16" needs amx_bf16 or avx512_bf16, which this CPU lacks')
        try:
            train(conn, "p_avx2", ROWS, epochs=1, precision="bf16")
            raise AssertionError("trained in bf16")
        except Exception as e:
            assert want in str(e), str(e)
    else:
        try:
            train(conn, "p_avx2", ROWS, epochs=1, precision="bf16", isa="avx2")
            raise AssertionError("trained in bf16 on avx2")
        except Exception as e:
            need = "amx" if "amx_bf16=1" in feats else "avx512"
            assert (f'option precision "bf16" needs isa "{need}" or above on this CPU; '
                    'the run\'s isa is "avx2"') in str(e), str(e)
        got = {}
        for threads in (1, 2, 2):
            name = f"p_bf16_{threads}_{len(got)}"
            one(conn, "SELECT cnn_create(?, ?, 3)", name, SMALL)
            r = train(conn, name, ROWS, epochs=1, seed=5, threads=threads, precision="bf16")
            assert r["precision"] == "bf16", r
            got[name] = (one(conn, "SELECT cnn_export(?)", name), r["loss"])
        bf = [b for b, _ in got.values()]
        assert bf[0] == bf[1] == bf[2], "bf16 training differs between runs or thread counts"
        assert bf[0] != blobs[best, 1], "bf16 training gave the fp32 bits"
        fp32, loss = losses[best, 1], next(iter(got.values()))[1]
        assert abs(loss - fp32) <= 0.02 * fp32, (loss, fp32)
        print(f"precision bf16 ({d['gemm_bf16']}): same bits on 1 and 2 threads and twice; "
              f"loss {loss:.5f} against fp32 {fp32:.5f}")
    print("ok")


if __name__ == "__main__":
    main()
