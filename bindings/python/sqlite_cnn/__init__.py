"""sqlite-cnn for Python: the SQLite extension cnn.so, which trains, stores and
runs a handwritten-digit CNN in SQL, shipped inside this package.

    import sqlite3, sqlite_cnn
    conn = sqlite3.connect("mnist.db")
    sqlite_cnn.load(conn)
    conn.execute("SELECT cnn_version()").fetchone()

load() switches extension loading on only for the load and off again, so the
SQL run on the connection afterwards cannot load other libraries.
"""
import os

from ._version import __version__

__all__ = ["ExtensionLoadingUnavailable", "__version__", "load", "loadable_path"]


class ExtensionLoadingUnavailable(RuntimeError):
    """The connection's sqlite3 module was built without extension loading."""


def loadable_path():
    """The path of the package's cnn.so, for load_extension() or the sqlite3 shell's .load."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "cnn.so")


def load(conn):
    """Loads cnn.so into conn (a sqlite3.Connection, or any connection with
    enable_load_extension and load_extension) and leaves extension loading
    disabled."""
    if not (hasattr(conn, "enable_load_extension") and hasattr(conn, "load_extension")):
        raise ExtensionLoadingUnavailable(
            "sqlite_cnn.load: this connection cannot load SQLite extensions: it has no "
            f"enable_load_extension ({type(conn).__module__}.{type(conn).__qualname__}). Python's "
            "sqlite3 module lacks it when Python was built without "
            "--enable-loadable-sqlite-extensions, as pyenv and macOS's system Python are by "
            "default. Use a Python built with it (Debian's and Ubuntu's /usr/bin/python3 are; "
            "with pyenv: PYTHON_CONFIGURE_OPTS=--enable-loadable-sqlite-extensions pyenv install "
            "VERSION), or load " + loadable_path() + " from a host that can: the sqlite3 shell's "
            ".load, or Node's better-sqlite3")
    conn.enable_load_extension(True)
    try:
        conn.load_extension(loadable_path())
    finally:
        conn.enable_load_extension(False)
