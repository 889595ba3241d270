"""PyTorch reference for the benchmark (tests/bench/run.sh): the notebook's
model, Glorot-uniform kernels and zero biases (Keras' initialisation), Adam
with Keras' epsilon 1e-7, softmax cross-entropy on logits, shuffled batches.

PyTorch's speed on a CPU depends on settings that no one value suits on every
machine, so the benchmark tries them and measures the fastest:
  torch_mnist.py DATA_DIR BATCH THREADS TRAIN_ROWS trial
prints one line of JSON: what PyTorch runs on (setup), the time of each
variant in short interleaved trials, and the fastest fp32 variant for
training, single-image and batched prediction (bf16 autocast training is
timed too, as a reference, never chosen);
  torch_mnist.py DATA_DIR BATCH THREADS TRAIN_ROWS run '{"train": ..., ...}'
trains one epoch and predicts with those variants and prints one line of
JSON: seconds per epoch, test accuracy, inference times (batch 1 and batch
1000) and peak RSS. Run with Debian's /usr/bin/python3 (python3-torch).
"""
import copy
import ctypes
import gzip
import json
import os
import re
import resource
import sys
import time

import numpy as np
import torch
from torch import nn

TRIAL_ROUNDS = 3      # interleaved, so that a burst of load elsewhere hits all variants alike
TRIAL_BATCHES = 6     # timed training batches per variant and round, after two warm-up ones
TRIAL_SINGLE = 50     # single-image predictions per variant and round
ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS",
       "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA",
       "LD_LIBRARY_PATH", "LD_PRELOAD", "GLIBC_TUNABLES")
# dnnl_cpu_isa_t of oneDNN 2.x, for dnnl_get_effective_cpu_isa().
DNNL_ISA = {0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0x407: "avx2_vnni", 0x27: "avx512_core",
            0x67: "avx512_core_vnni", 0xe7: "avx512_core_bf16", 0x3e7: "avx512_core_amx"}


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def model():
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        # Keras flattens NHWC; the order does not matter for speed or accuracy.
        nn.Flatten(), nn.Linear(576, 5000), nn.ReLU(), nn.Linear(5000, 10))
    for layer in m:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return m


def variant(name):
    """'onednn+channels_last+bf16' and the like: which convolution code
    (oneDNN or PyTorch's own), memory format, autocast, no_grad or
    inference_mode."""
    parts = name.split("+")
    return {"onednn": parts[0] == "onednn", "channels_last": "channels_last" in parts,
            "bf16": "bf16" in parts, "inference_mode": "inference_mode" in parts}


def use(v, m):
    """Applies variant v to the process and model m; returns its input format."""
    torch.backends.mkldnn.enabled = v["onednn"]
    fmt = torch.channels_last if v["channels_last"] else torch.contiguous_format
    m.to(memory_format=fmt)
    return fmt


def images(x, fmt):
    return (x.unsqueeze(1).float() / 255.0).contiguous(memory_format=fmt)


def train(m, opt, v, fmt, x, y, order, batch):
    loss_fn = nn.CrossEntropyLoss()
    for i in range(0, len(order), batch):
        sel = order[i:i + batch]
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v["bf16"]):
            loss = loss_fn(m(images(x[sel], fmt)), y[sel])
        loss.backward()
        opt.step()


def predict(m, v, x):
    with torch.inference_mode() if v["inference_mode"] else torch.no_grad():
        return m(x).argmax(1)


def setup():
    """What PyTorch runs on: the libraries actually mapped into this process
    (libblas.so.3 is whichever BLAS Debian's alternatives or LD_LIBRARY_PATH
    give), OpenBLAS' kernel choice, oneDNN's instruction set, the settings."""
    maps = sorted({line.split()[-1] for line in open("/proc/self/maps")
                   if re.search(r"blas|lapack|gomp|iomp|dnnl", line)})
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "interop_threads": torch.get_num_interop_threads(),
           "onednn_available": torch.backends.mkldnn.is_available(), "libraries": maps,
           "env": {k: os.environ[k] for k in ENV if k in os.environ}}
    for path in maps:
        if "libopenblas" in path:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = lib.openblas_get_config.restype = ctypes.c_char_p
            out["openblas"] = (f"{lib.openblas_get_config().decode()}; core {lib.openblas_get_corename().decode()}, "
                               f"{lib.openblas_get_num_threads()} threads")
        if "libdnnl" in path:
            isa = ctypes.CDLL(path).dnnl_get_effective_cpu_isa()
            out["onednn_isa"] = DNNL_ISA.get(isa, hex(isa))
    return out


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def trial(xtr, ytr, xte, batch):
    """Short runs of every variant, interleaved; the fastest round of each counts
    (the machine may be shared, and load elsewhere only ever slows a run)."""
    base = model()
    fp32 = ["onednn", "onednn+channels_last", "native", "native+channels_last"]
    bf16 = ["onednn+bf16", "onednn+channels_last+bf16"]
    modes = [f"{c}+{g}" for c in fp32 for g in ("no_grad", "inference_mode")]
    times = {"train": {}, "predict_single": {}, "predict_batched": {}}
    warm, timed_part = torch.arange(2 * batch), torch.arange(2 * batch, min(len(xtr), (2 + TRIAL_BATCHES) * batch))
    for _ in range(TRIAL_ROUNDS):
        for name in fp32 + bf16:
            v = variant(name)
            m = copy.deepcopy(base)
            fmt = use(v, m)
            opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)
            train(m, opt, v, fmt, xtr, ytr, warm, batch)
            us = timed(lambda: train(m, opt, v, fmt, xtr, ytr, timed_part, batch)) / len(timed_part) * 1e6
            times["train"][name] = min(us, times["train"].get(name, us))
        m = copy.deepcopy(base).eval()
        for name in modes:
            v = variant(name)
            fmt = use(v, m)
            x = images(xte[:1000], fmt)
            predict(m, v, x[:1])
            us = timed(lambda: [predict(m, v, x[i:i + 1]) for i in range(TRIAL_SINGLE)]) / TRIAL_SINGLE * 1e6
            times["predict_single"][name] = min(us, times["predict_single"].get(name, us))
            s = timed(lambda: predict(m, v, x)) * 10
            times["predict_batched"][name] = min(s, times["predict_batched"].get(name, s))
    best = {k: min((n for n in t if "bf16" not in n), key=t.get) for k, t in times.items()}
    return {"setup": setup(), "times": times, "best": best}


def run(xtr, ytr, xte, yte, batch, best):
    v = variant(best["train"])
    m = model()
    fmt = use(v, m)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)
    m.train()
    perm = torch.randperm(len(xtr))
    train_s = timed(lambda: train(m, opt, v, fmt, xtr, ytr, perm, batch))
    m.eval()
    v = variant(best["predict_batched"])
    x = images(xte, use(v, m))
    predict(m, v, x[:1000])  # oneDNN sets up its kernels for a shape on first use
    start = time.perf_counter()
    pred = torch.cat([predict(m, v, x[i:i + 1000]) for i in range(0, len(x), 1000)])
    batched_s = time.perf_counter() - start
    v = variant(best["predict_single"])
    x = images(xte[:1000], use(v, m))
    predict(m, v, x[:1])
    single_us = timed(lambda: [predict(m, v, x[i:i + 1]) for i in range(len(x))]) / len(x) * 1e6
    return {
        "seconds_per_epoch": train_s * 60000 / len(xtr),
        "us_per_sample": train_s / len(xtr) * 1e6,
        "test_accuracy": (pred == yte).float().mean().item(),
        "predict_us_batch1": single_us,
        "predict_s_10000_batched": batched_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main():
    data, batch, threads, rows, what = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    xtr = torch.from_numpy(idx(f"{data}/train-images-idx3-ubyte.gz")[:rows].copy())
    ytr = torch.from_numpy(idx(f"{data}/train-labels-idx1-ubyte.gz")[:rows].astype(np.int64))
    xte = torch.from_numpy(idx(f"{data}/t10k-images-idx3-ubyte.gz").copy())
    yte = torch.from_numpy(idx(f"{data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    if what == "trial":
        out = trial(xtr, ytr, xte, batch)
    else:
        out = run(xtr, ytr, xte, yte, batch, json.loads(sys.argv[6]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
