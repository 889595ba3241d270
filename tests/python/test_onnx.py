"""cnn_export_onnx: models covering every layer type, both paddings, every
named activation and custom formulas are trained briefly on a few hundred
MNIST rows, exported, checked by onnx.checker (with shape inference) and run;
their outputs must match cnn_predict_proba within 1e-5 (1000 test images for
the notebook's model, 200 for the others).

Debian 12's onnx (1.12) has no onnx.reference, so the graph runs through
run_graph below: a small NumPy interpreter of exactly the ONNX operators the
export uses, written from the ONNX operator specification (in float64) and
refusing any operator or attribute it does not know. The test must be able
to fail: mutated exports (flattening in NCHW order, 'same' padding put
before instead of after, a formula's constant changed) must give other
numbers.
"""
import json
import math
import sys

import numpy as np
import onnx
from onnx import numpy_helper

from cnntest import DATA, connect, one

TOL = 1e-5

MODELS = {
    # The notebook's model (NULL spec).
    "nb": None,
    # 'same' everywhere, the odd pixel after: kernel 4 stride 1 (pads 1, 2),
    # pools of 3 and 2 with stride 2 over 28 and 7 pixels (0, 1).
    "same": {"input": [28, 28, 1], "layers": [
        {"type": "conv2d", "filters": 6, "kernel": 4, "padding": "same", "use_bias": False},
        {"type": "batchnorm", "momentum": 0.5},
        {"type": "activation", "activation": "leaky_relu"},
        {"type": "maxpool", "size": 3, "strides": 2, "padding": "same"},
        {"type": "conv2d", "filters": 8, "kernel": 3, "strides": 2, "padding": "same",
         "activation": "elu"},
        {"type": "avgpool", "size": 2, "padding": "same"},
        {"type": "dropout", "rate": 0.3},
        {"type": "flatten"},
        {"type": "dense", "units": 16, "activation": "gelu"},
        {"type": "dense", "units": 10, "activation": "softmax"}]},
    # 'valid' with strides that leave pixels over, 1x1 convolutions (one on a
    # dense layer's vector), softmax over an image's channels, batchnorm on an
    # image and on a vector, global average pooling, and logits out.
    "valid": {"input": [28, 28, 1], "layers": [
        {"type": "conv2d", "filters": 5, "kernel": 5, "strides": 2, "activation": "sigmoid"},
        {"type": "avgpool", "size": 3, "strides": 2},
        {"type": "conv2d", "filters": 12, "kernel": 1, "activation": "swish"},
        {"type": "maxpool", "size": 2},
        {"type": "batchnorm", "momentum": 0.5, "center": False, "epsilon": 0.01},
        {"type": "activation", "activation": "softmax"},
        {"type": "conv2d", "filters": 10, "kernel": 2, "activation": "tanh"},
        {"type": "globalavgpool"},
        {"type": "batchnorm", "momentum": 0.5, "scale": False},
        {"type": "dense", "units": 12, "activation": "selu"},
        {"type": "conv2d", "filters": 12, "kernel": 1, "activation": "relu"},
        {"type": "dense", "units": 10}]},
    # The other activations and custom formulas (every operation of the
    # formula language, constants on either side), an activation on the raw
    # NHWC input, and a formula as the last activation.
    "acts": {"input": [28, 28, 1], "layers": [
        {"type": "activation", "activation": {"expr": "x*2 - 1"}},
        {"type": "conv2d", "filters": 4, "kernel": 3, "strides": 2,
         "activation": {"expr": "max(x, 0.1*x) + 0.05*x^2 - abs(x)/4"}},
        {"type": "activation", "activation": "softplus"},
        {"type": "maxpool", "size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 32, "activation": "softsign"},
        {"type": "activation", "activation": {"expr":
            "tanh(x)*sigmoid(x) + sqrt(abs(x) + 1) - log(1 + x^2) + exp(-x^2)"
            " + min(x, 0.5) + 2^x / (1 + x^2)"}},
        {"type": "dense", "units": 16, "activation": "hard_sigmoid"},
        {"type": "activation", "activation": "exponential"},
        {"type": "dense", "units": 16, "activation": {"name": "leaky_relu", "alpha": 0.05}},
        {"type": "activation", "activation": "relu"},
        {"type": "dense", "units": 10, "activation": {"expr": "x^3/10 - (-x)"}}]},
    # Batchnorm straight on the NHWC input, dense without bias, a constant
    # formula (its value in the input's shape).
    "const": {"input": [28, 28, 1], "layers": [
        {"type": "batchnorm", "momentum": 0.5},
        {"type": "flatten"},
        {"type": "dense", "units": 10, "use_bias": False},
        {"type": "activation", "activation": {"expr": "0.5 + 1"}}]},
}


# ---------------------------------------------------------------- the runner

def attrs_of(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def windows(x, kh, kw, sh, sw):
    """[N, C, OH, OW, kh, kw] views of an already padded NCHW x (floor)."""
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return v[:, :, ::sh, ::sw]


def padded(x, pads, value):
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def window_attrs(a, allowed):
    extra = set(a) - allowed
    if extra:
        raise ValueError(f"attributes the runner does not know: {extra}")
    return a["kernel_shape"], a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0])


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def run_node(op, a, ins):
    x = ins[0]
    if op == "Cast":
        assert a == {"to": onnx.TensorProto.FLOAT}, a
        return x.astype(np.float64)
    if op == "Transpose":
        return np.transpose(x, a["perm"])
    if op == "Flatten":
        axis = a.get("axis", 1)
        return x.reshape(int(np.prod(x.shape[:axis])), -1)
    if op == "Reshape":
        shape = [x.shape[i] if s == 0 else int(s) for i, s in enumerate(ins[1])]
        return x.reshape(shape)
    if op == "Conv":
        (kh, kw), (sh, sw), pads = window_attrs(a, {"kernel_shape", "strides", "pads"})
        v = windows(padded(x, pads, 0.0), kh, kw, sh, sw)
        y = np.tensordot(v, ins[1], axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
        return y + ins[2][None, :, None, None] if len(ins) > 2 else y
    if op == "MaxPool":
        (kh, kw), (sh, sw), pads = window_attrs(a, {"kernel_shape", "strides", "pads"})
        return windows(padded(x, pads, -np.inf), kh, kw, sh, sw).max(axis=(4, 5))
    if op == "AveragePool":
        allowed = {"kernel_shape", "strides", "pads", "count_include_pad"}
        (kh, kw), (sh, sw), pads = window_attrs(a, allowed)
        total = windows(padded(x, pads, 0.0), kh, kw, sh, sw).sum(axis=(4, 5))
        if a.get("count_include_pad", 0):
            return total / (kh * kw)
        ones = padded(np.ones((1, 1) + x.shape[2:]), pads, 0.0)
        return total / windows(ones, kh, kw, sh, sw).sum(axis=(4, 5))
    if op == "GlobalAveragePool":
        return x.mean(axis=(2, 3), keepdims=True)
    if op == "BatchNormalization":
        assert set(a) <= {"epsilon"}, a
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale, bias, mean, var = (t.reshape(shape) for t in ins[1:])
        return (x - mean) / np.sqrt(var + a.get("epsilon", 1e-5)) * scale + bias
    if op == "Gemm":
        assert not a, a
        y = x @ ins[1]
        return y + ins[2] if len(ins) > 2 else y
    if op == "Softmax":
        e = np.exp(x - x.max(axis=a.get("axis", -1), keepdims=True))
        return e / e.sum(axis=a.get("axis", -1), keepdims=True)
    if op == "LeakyRelu":
        return np.where(x >= 0, x, a.get("alpha", 0.01) * x)
    if op == "Elu":
        return np.where(x >= 0, x, a.get("alpha", 1.0) * np.expm1(x))
    if op == "Selu":
        return a["gamma"] * np.where(x > 0, x, a["alpha"] * np.expm1(x))
    if op == "HardSigmoid":
        return np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1)
    if op == "Shape":
        return np.array(x.shape, dtype=np.int64)
    if op == "Expand":
        return x * np.ones(tuple(ins[1]))
    assert not a, (op, a)
    unary = {
        "Identity": lambda x: x, "Relu": lambda x: np.maximum(x, 0),
        "Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Tanh": np.tanh, "Erf": erf,
        "Softplus": lambda x: np.logaddexp(0, x), "Softsign": lambda x: x / (1 + np.abs(x)),
        "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt, "Abs": np.abs, "Neg": np.negative}
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Pow": np.power, "Min": np.minimum, "Max": np.maximum}
    if op in unary:
        return unary[op](x)
    if op in binary:
        return binary[op](x, ins[1])
    raise ValueError(f"operator the runner does not know: {op}")


def run_graph(model, images):
    """{output name: array} for uint8 images [N, H, W, C]."""
    g = model.graph
    env = {t.name: numpy_helper.to_array(t).astype(
        np.int64 if t.data_type == onnx.TensorProto.INT64 else np.float64) for t in g.initializer}
    env[g.input[0].name] = images
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for node in g.node:
            env[node.output[0]] = run_node(node.op_type, attrs_of(node),
                                           [env[i] for i in node.input])
    return {o.name: env[o.name] for o in g.output}


# ---------------------------------------------------------------- the test

def images_and_probs(conn, name, n):
    rows = conn.execute("SELECT image, cnn_predict_proba(?, image) FROM mnist_test "
                        "WHERE id < ? ORDER BY id", (name, n)).fetchall()
    images = np.frombuffer(b"".join(r[0] for r in rows), np.uint8).reshape(n, 28, 28, 1)
    return images, np.array([json.loads(r[1]) for r in rows])


def check_model(conn, name, n):
    blob = one(conn, "SELECT cnn_export_onnx(?)", name)
    model = onnx.load_from_string(blob)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 7 and model.opset_import[0].version == 13, model.opset_import
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["probabilities", "logits"]
    assert "/255" in model.graph.doc_string
    images, want = images_and_probs(conn, name, n)
    out = run_graph(model, images)
    got = out["probabilities"]
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.abs(got - want).max()
    logits = out["logits"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    lerr = np.abs(e / e.sum(axis=1, keepdims=True) - got).max()
    print(f"{name}: {len(model.graph.node)} nodes, {n} images, max |onnx - cnn_predict_proba| "
          f"= {err:.2e}, softmax(logits) vs probabilities {lerr:.2e}")
    assert err < TOL, (name, err)
    assert lerr < TOL, (name, lerr)
    # Predictions are not all alike: a graph that ignores its input would pass
    # on a network that does too.
    if name != "const":
        assert len(set(got.argmax(axis=1))) > 1 and got.std(axis=0).max() > 1e-3, name
    return model, images, want


def mutated(model, change):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    assert change(m), "the mutation found nothing to change"
    return m


def must_differ(what, model, images, want):
    got = run_graph(model, images)["probabilities"]
    diff = np.abs(got - want).max()
    print(f"mutation {what}: max difference {diff:.2e}")
    assert diff > 1e-3, f"mutation {what} went unnoticed"


def flatten_in_nchw_order(m):
    for node in m.graph.node:
        if node.op_type == "Transpose" and node.output[0].startswith("flatten/"):
            node.attribute[0].ints[:] = [0, 1, 2, 3]
            return True


def padding_before(m):
    for node in m.graph.node:
        if node.op_type == "Conv" and node.output[0].startswith("conv2d/"):
            pads = attrs_of(node)["pads"]
            assert pads == [1, 1, 2, 2], pads  # Keras: the odd pixel after
            for at in node.attribute:
                if at.name == "pads":
                    at.ints[:] = [2, 2, 1, 1]
            return True


def formula_constant(m):
    for t in m.graph.initializer:
        if t.name.startswith("const_") and abs(numpy_helper.to_array(t) - 0.05) < 1e-7:
            t.CopyFrom(numpy_helper.from_array(np.array(0.5, np.float32), t.name))
            return True


def main():
    conn = connect()
    one(conn, "SELECT cnn_import_mnist(?)", DATA)
    results = {}
    for name, spec in MODELS.items():
        one(conn, "SELECT cnn_create(?, ?, 7)", name, spec and json.dumps(spec))
        one(conn, "SELECT cnn_train(?, 'SELECT image, label FROM mnist_train WHERE id < 300', "
                  "'{\"epochs\": 1, \"seed\": 3}')", name)
        results[name] = check_model(conn, name, 1000 if name == "nb" else 200)
    model, images, want = results["nb"]
    must_differ("flatten in NCHW order", mutated(model, flatten_in_nchw_order), images, want)
    model, images, want = results["same"]
    must_differ("'same' padding before", mutated(model, padding_before), images, want)
    model, images, want = results["acts"]
    must_differ("formula constant 0.05 -> 0.5", mutated(model, formula_constant), images, want)
    # Every named activation of the engine is in some model above.
    names = set()
    for spec in MODELS.values():
        for layer in (spec or {"layers": []})["layers"]:
            act = layer.get("activation")
            names.add(act if isinstance(act, str) else
                      ("expr" if act and "expr" in act else act and act["name"]))
    every = {"relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "selu", "gelu", "swish",
             "softplus", "softsign", "hard_sigmoid", "exponential", "expr"}
    assert every <= names, every - names
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
