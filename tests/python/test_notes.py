"""sql/notes.sh on tiny subsets: every note's experiment runs on the tested
cnn.so (NOTES_SO) and writes its charts, which parse as SVG with one line and
one legend entry per model, and its numbers into notes_results; the XOR
images are 784-byte blobs whose labels match their pixels; models and
results of an earlier run are replaced. The configuration is checked before anything
runs.

Run by ctest with /usr/bin/python3; CNN_SO, CNN_DATA and CNN_ROOT come from
the environment. MNIST's tables hold a few hundred rows of the test set here,
so notes.sql does not import the whole of it.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from cnntest import DATA, ROOT, SO, connect

NS = "{http://www.w3.org/2000/svg}"
TINY = {"NOTES_ROWS": "100", "NOTES_TEST_ROWS": "50", "NOTES_EPOCHS": "2",
        "NOTES_XOR_ROWS": "40", "NOTES_XOR_EPOCHS": "1",
        "NOTES_OVERFIT_ROWS": "50", "NOTES_OVERFIT_EPOCHS": "2"}
# Comparison charts and the models on them, in legend order.
CHARTS = {
    "5.3-activations.svg": ["note_relu", "note_sigmoid", "note_tanh", "note_elu", "note_gelu",
                            "note_mish_expr"],
    "5.3-activations-loss.svg": ["note_relu", "note_sigmoid", "note_tanh", "note_elu",
                                 "note_gelu", "note_mish_expr"],
    "5.3-init.svg": ["note_relu", "note_relu_he"],
    "5.4-linear-mnist.svg": ["note_mlp_linear", "note_mlp_relu"],
    "5.4-linear-xor.svg": ["note_xor_linear", "note_xor_relu"],
    "5.5-optimizers.svg": ["note_sgd", "note_momentum", "note_nesterov", "note_adam",
                           "note_adagrad", "note_adamax", "note_rmsprop"],
    "5.5-optimizers-val.svg": ["note_sgd", "note_momentum", "note_nesterov", "note_adam",
                               "note_adagrad", "note_adamax", "note_rmsprop"],
    "5.9-pooling.svg": ["note_relu", "note_nopool"],
    "5.12-val-loss.svg": ["note_wide", "note_wide_dropout"],
}
# cnn_layer_stats_svg: a line per layer with a kernel (six hidden, output).
LAYER_CHARTS = {
    "5.3-gradients-sigmoid.svg": ["dense", "dense_1", "dense_2", "dense_3", "dense_4", "dense_5",
                                  "dense_6"],
    "5.3-gradients-relu.svg": ["dense", "dense_1", "dense_2", "dense_3", "dense_4", "dense_5",
                               "dense_6"],
}
SINGLE = ["5.11-overfitting.svg", "5.12-dropout.svg"]  # train against validation


def run(db, out, **env):
    e = dict(os.environ, NOTES_SO=SO, NOTES_DATA=DATA, NOTES_OUT=out, **env)
    return subprocess.run(["sh", os.path.join(ROOT, "sql", "notes.sh"), db], env=e,
                          capture_output=True, text=True, timeout=300)


def main():
    tmp = tempfile.mkdtemp()
    try:
        db, out = os.path.join(tmp, "notes.db"), os.path.join(tmp, "charts")
        conn = connect(db)
        images = os.path.join(DATA, "t10k-images-idx3-ubyte.gz")
        labels = os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")
        for table, lo in (("mnist_train", 0), ("mnist_test", 500)):
            conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, image BLOB NOT NULL, "
                         "label INTEGER NOT NULL)")
            conn.execute(f"INSERT INTO {table} SELECT idx - ?, image, label FROM cnn_mnist(?, ?) "
                         "WHERE idx >= ? AND idx < ? + 400", (lo, images, labels, lo, lo))
        # What an earlier run left: a model of the same name and a result row.
        conn.execute("SELECT cnn_create('note_relu', '{\"input\":[28,28,1],\"layers\":["
                     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]}')")
        conn.execute("CREATE TABLE notes_results (note TEXT NOT NULL, model TEXT NOT NULL, "
                     "metric TEXT NOT NULL, value REAL, PRIMARY KEY (note, model, metric))")
        conn.execute("INSERT INTO notes_results VALUES ('5.3', 'stale', 'accuracy', 1)")
        conn.close()

        # Bad sizes are refused before anything runs.
        p = run(db, out, **dict(TINY, NOTES_EPOCHS="two"))
        assert p.returncode != 0 and "NOTES_EPOCHS must be a positive integer" in p.stderr, p
        assert not os.path.exists(out), os.listdir(out)

        p = run(db, out, **TINY)
        assert p.returncode == 0 and "rror" not in p.stderr, (p.stdout[-3000:], p.stderr)

        for name, models in {**CHARTS, **LAYER_CHARTS}.items():
            root = ET.parse(os.path.join(out, name)).getroot()
            assert root.tag == NS + "svg", name
            series = [g for g in root.iter(NS + "g") if g.get("class") == "series"]
            assert [g.get("data-name") for g in series] == models, (name, series)
            assert all(len(g.findall(NS + "path")) == 1 for g in series), name
            legend = [g.find(NS + "text").text for g in root.iter(NS + "g")
                      if g.get("class") == "legend-entry"]
            assert legend == models, (name, legend)
        for name in SINGLE:
            root = ET.parse(os.path.join(out, name)).getroot()
            ids = {g.get("id") for g in root.iter(NS + "g")}
            assert {"accuracy", "val_accuracy"} <= ids, (name, ids)
        with open(os.path.join(out, "5.4-xor-images.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"

        conn = sqlite3.connect(db)
        got = {(n, m, k): v for n, m, k, v in conn.execute("SELECT * FROM notes_results")}
        models = {m for charted in CHARTS.values() for m in charted}
        pairs = {(m, k) for _, m, k in got}
        for model in models:
            for metric in ("accuracy", "val_accuracy", "loss", "val_loss", "seconds_per_epoch",
                           "params"):
                assert (model, metric) in pairs, (model, metric)
        assert not any(m == "stale" for _, m, _ in got), "an earlier run's rows stay"
        assert got[("5.3", "note_relu", "params")] == 56714  # the earlier model was replaced
        epochs = {m: e for m, e in conn.execute("SELECT name, epochs FROM cnn_models")}
        for model in models - {"note_wide", "note_wide_dropout", "note_xor_linear",
                               "note_xor_relu"}:
            assert epochs[model] == int(TINY["NOTES_EPOCHS"]), (model, epochs[model])
        assert epochs["note_wide"] == int(TINY["NOTES_OVERFIT_EPOCHS"])
        assert epochs["note_xor_relu"] == int(TINY["NOTES_XOR_EPOCHS"])
        xor = 2 * int(TINY["NOTES_XOR_ROWS"])
        assert got[("5.4", "xor data", "images")] == xor
        assert got[("5.4", "xor data", "blobs_784")] == xor
        assert got[("5.4", "xor data", "labels_match_pixels")] == xor
        assert got[("5.4", "xor data", "label_1")] == xor / 2
        # Pooling: fewer parameters and fewer activations per image.
        for metric in ("params", "activations_per_image"):
            assert got[("5.9", "note_relu", metric)] < got[("5.9", "note_nopool", metric)], metric
        for note in ("5.11", "5.12"):
            model = "note_wide" if note == "5.11" else "note_wide_dropout"
            assert 1 <= got[(note, model, "best_val_loss_epoch")] <= int(TINY["NOTES_OVERFIT_EPOCHS"])
            assert (note, model, "accuracy_gap") in got
        # The layer statistics section.
        stats = {(m, k) for n, m, k in got if n == "stats"}
        for model in ("note_deep_sigmoid", "note_deep_relu"):
            assert (model, "val_accuracy") in stats, model
            assert (model, "grad_mean_abs_layer_1") in stats, (model, stats)
        print("test_notes: ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
