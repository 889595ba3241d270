"""cnntest.py - what the Python tests share: the paths ctest passes in the
environment, a connection with cnn.so loaded, and the small model and
training rows several tests train on.

Not a test itself (ctest runs tests/python/test_*.py only). The tests run as
scripts, so their own directory is on sys.path and `import cnntest` finds it.

Environment: CNN_SO (path to cnn.so) and CNN_DATA (directory of the four
MNIST .gz files) are required; CNN_ROOT (the repository) defaults to the tree
this file is in.
"""
import json
import os
import sqlite3

SO = os.environ["CNN_SO"]
DATA = os.environ["CNN_DATA"]
ROOT = os.environ.get("CNN_ROOT") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))

# A model that trains in seconds: 13610 parameters.
SMALL = json.dumps({"input": [28, 28, 1], "layers": [
    {"type": "conv2d", "filters": 8, "kernel": 3, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 10}]})
ROWS = "SELECT image, label FROM mnist_train WHERE id < 2000"

# What the tests with several connections and threads need: autocommit (so
# cnn_train commits each epoch itself), connections handed between threads,
# and patience for another connection's write lock.
CONNECT_DEFAULTS = {"isolation_level": None, "check_same_thread": False, "timeout": 30}


def connect(path=":memory:", so=SO, keep_loading=False, **kw):
    """sqlite3.connect(path, **kw) over CONNECT_DEFAULTS, with the extension
    so loaded. Loading is switched off again afterwards unless keep_loading,
    so SQL cannot load other libraries through the connection."""
    conn = sqlite3.connect(path, **{**CONNECT_DEFAULTS, **kw})
    conn.enable_load_extension(True)
    conn.load_extension(so)
    if not keep_loading:
        conn.enable_load_extension(False)
    return conn


def one(conn, sql, *args):
    """The first column of the first row of sql."""
    return conn.execute(sql, args).fetchone()[0]


def train(conn, name, source, **options):
    """cnn_train with options as keyword arguments; its result, parsed."""
    return json.loads(one(conn, "SELECT cnn_train(?, ?, ?)", name, source, json.dumps(options)))
