"""The Python package (bindings/python) as a user gets it, with the commands
of README's Installing section: a fresh venv over Debian's Python and packages
(--system-site-packages), an offline `pip install --no-build-isolation` of the
checkout, which builds cnn.so with the repository's CMake; then, in that venv: the version, load() into a
connection (extension loading disabled again afterwards), a model trained on
300 MNIST rows that predicts test digits, the sqlite-utils plugin (its entry
point and hook as sqlite-utils 3.34+ call them, and the command
sqlite-utils-cnn for Debian 12's sqlite-utils without plugins), and the error
of load() on a connection that cannot load extensions; then the section's
Python example and sqlite-utils-cnn commands.

Run by ctest with /usr/bin/python3; needs python3-venv, python3-pip,
python3-setuptools, python3-wheel, python3-pluggy and sqlite-utils
(tools/deps.sh). CNN_ROOT and CNN_DATA come from the environment.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from cnntest import DATA, ROOT, SMALL
from test_readme import blocks

# Runs inside the venv: argv = database path, expected version, MNIST
# directory, model spec. Leaves the database with MNIST and the model "small".
IN_VENV = r'''
import importlib.metadata
import json
import os
import sqlite3
import sys

import pluggy
import sqlite_cnn

db, version, data, spec = sys.argv[1:]
path = sqlite_cnn.loadable_path()
assert path.startswith(sys.prefix + os.sep) and os.path.isfile(path), (path, sys.prefix)
assert sqlite_cnn.__version__ == version, (sqlite_cnn.__version__, version)

conn = sqlite3.connect(db, isolation_level=None)
sqlite_cnn.load(conn)
one = lambda sql, *args: conn.execute(sql, args).fetchone()[0]
assert one("SELECT cnn_version()") == version

# load() leaves extension loading off: SQL cannot load a library.
try:
    conn.execute("SELECT load_extension(?)", (path,)).fetchone()
    raise AssertionError("load_extension() worked after sqlite_cnn.load()")
except sqlite3.OperationalError as e:
    assert "not authorized" in str(e), e

# A small model trained on 300 rows predicts test digits well above chance.
assert one("SELECT cnn_import_mnist(?)", data) == 70000
assert one("SELECT cnn_create('small', ?, 7)", spec) == 13610
r = json.loads(one("SELECT cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id < 300', "
                   "'{\"epochs\": 5, \"seed\": 1}')"))
assert r["epochs_run"] == 5 and r["samples"] == 300, r
ev = json.loads(one("SELECT cnn_evaluate('small', 'SELECT image, label FROM mnist_test WHERE id < 200')"))
assert ev["count"] == 200 and ev["accuracy"] > 0.4, ev
digit, proba = conn.execute(
    "SELECT cnn_predict('small', image), cnn_predict_proba('small', image) FROM mnist_test WHERE id = 0"
).fetchone()
proba = json.loads(proba)
assert digit in range(10) and proba.index(max(proba)) == digit, (digit, proba)
conn.close()

# A connection object without extension loading, as Python's sqlite3 is when
# built without --enable-loadable-sqlite-extensions (pyenv's default).
class NoLoading:
    def __init__(self, conn):
        self._conn = conn

    def execute(self, *args):
        return self._conn.execute(*args)

plain = sqlite3.connect(":memory:")
try:
    sqlite_cnn.load(NoLoading(plain))
    raise AssertionError("load() accepted a connection without enable_load_extension")
except sqlite_cnn.ExtensionLoadingUnavailable as e:
    message = str(e)
for part in ("sqlite_cnn.load: this connection cannot load SQLite extensions",
             "no enable_load_extension", "--enable-loadable-sqlite-extensions", path):
    assert part in message, (part, message)
assert isinstance(sqlite_cnn.ExtensionLoadingUnavailable(), RuntimeError)

# The sqlite-utils plugin as sqlite-utils 3.34 and later load and call it.
eps = [ep for ep in importlib.metadata.entry_points(group="sqlite_utils") if ep.name == "sqlite_cnn"]
assert [ep.value for ep in eps] == ["sqlite_cnn.plugin"], eps
pm = pluggy.PluginManager("sqlite_utils")
assert pm.load_setuptools_entrypoints("sqlite_utils") >= 1
fresh = sqlite3.connect(":memory:")
pm.hook.prepare_connection(conn=fresh)
assert fresh.execute("SELECT cnn_version()").fetchone()[0] == version
import sqlite_utils
print(json.dumps({"accuracy": ev["accuracy"], "digit": digit,
                  "sqlite_utils_plugins": hasattr(sqlite_utils, "hookimpl")}))
'''


def cmake_version():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(sqlite-cnn VERSION ([0-9.]+)", f.read()).group(1)


def readme_installing():
    """The Installing section's examples for the Python package: the sh lines
    that make the venv and install (run from a directory where ./bindings is
    the checkout's), those that run sqlite-utils-cnn, and the python blocks."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        found = [(lang, code) for section, lang, code in blocks(f.read())
                 if section.endswith("## Installing")]
    lines = [line for lang, code in found if lang == "sh" for line in code.splitlines()]
    setup = [l for l in lines if l.startswith(("/usr/bin/python3 -m venv ", ".venv/bin/pip "))]
    tools = [l for l in lines if l.startswith(".venv/bin/sqlite-utils-cnn ")]
    python = [code for lang, code in found if lang == "python" and "import sqlite3, sqlite_cnn" in code]
    assert len(setup) == 2 and len(tools) >= 1 and len(python) == 1, (setup, tools, python)
    return setup, tools, python


def run(cmd, env, what, cwd=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n"
                             f"--- stdout\n{p.stdout}--- stderr\n{p.stderr}")
    return p.stdout


def main():
    version = cmake_version()
    # pip, CMake and the compiler are not ours to check under a sanitizer's
    # preload, and the venv must see only what it installs itself.
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")  # offline
    setup, tools, examples = readme_installing()
    tmp = tempfile.mkdtemp(prefix="cnn-package-")
    try:
        os.symlink(os.path.join(ROOT, "bindings"), os.path.join(tmp, "bindings"))
        start = time.monotonic()
        for line in setup:
            run(["sh", "-c", line], env, "README: " + line, cwd=tmp)
        seconds = time.monotonic() - start
        venv = os.path.join(tmp, ".venv")
        py = os.path.join(venv, "bin", "python")
        shown = run([py, "-m", "pip", "show", "sqlite-cnn"], env, "pip show")
        assert f"Version: {version}\n" in shown, shown

        db = os.path.join(tmp, "mnist.db")
        script = os.path.join(tmp, "in_venv.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(IN_VENV)
        facts = json.loads(run([py, script, db, version, DATA, SMALL], env, "checks in the venv"))

        # sqlite-utils' command line without --load-extension.
        tool = os.path.join(venv, "bin", "sqlite-utils-cnn")
        sql = "SELECT cnn_version() AS v, cnn_predict('small', image) AS digit FROM mnist_test WHERE id = 0"
        want = [{"v": version, "digit": facts["digit"]}]
        got = json.loads(run([tool, "query", db, sql], env, "sqlite-utils-cnn query"))
        assert got == want, (got, want)
        got = json.loads(run([tool, "memory", "SELECT cnn_version() AS v"], env, "sqlite-utils-cnn memory"))
        assert got == [{"v": version}], got
        if facts["sqlite_utils_plugins"]:
            # sqlite-utils 3.34+ loads the plugin itself.
            got = json.loads(run([py, "-m", "sqlite_utils", "query", db, sql], env, "sqlite-utils query"))
            assert got == want, (got, want)

        # README's examples, in the directory of the venv and mnist.db.
        for line in tools:
            got = json.loads(run(["sh", "-c", line], env, "README: " + line, cwd=tmp))
            assert isinstance(got, list) and got, (line, got)
        for code in examples:
            out = run([py, "-c", code], env, "README's Python example", cwd=tmp)
            assert out.startswith(f"{version} {version}\n"), out
        print(f"ok: pip install in {seconds:.0f} s; sqlite_cnn {version} predicts, accuracy "
              f"{facts['accuracy']:.2f} after 300 rows; sqlite-utils-cnn query works"
              + ("; sqlite-utils loads the plugin" if facts["sqlite_utils_plugins"] else
                 " (this sqlite-utils has no plugins: the hook was called through pluggy)"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
