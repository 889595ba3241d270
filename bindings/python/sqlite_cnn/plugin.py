"""The sqlite-utils plugin: every connection that sqlite-utils opens gets cnn.so.

sqlite-utils 3.34 and later find this module through the entry point group
"sqlite_utils" (pyproject.toml) and call prepare_connection(conn) on every
connection: `sqlite-utils query mnist.db "SELECT cnn_version()"` then works
without --load-extension, in the environment this package is installed in.

Older sqlite-utils has no plugins (Debian 12 ships 3.30). For it, the command
sqlite-utils-cnn (main below) is sqlite-utils' own command line, same commands
and options, with the same preparation applied to every connection it opens.
Where sqlite-utils has plugins, sqlite-utils-cnn only runs it.
"""
from . import load

try:
    import pluggy
except ImportError:  # then no sqlite-utils that could call the hook is installed
    pluggy = None

# sqlite-utils' own marker is this one (sqlite_utils.hookimpl); making it here
# keeps the module importable while sqlite-utils is still importing its plugins.
hookimpl = pluggy.HookimplMarker("sqlite_utils") if pluggy else (lambda f: f)


@hookimpl
def prepare_connection(conn):
    load(conn)


def has_plugins(sqlite_utils):
    return hasattr(sqlite_utils, "hookimpl")


def main(argv=None):
    """sqlite-utils' command line (click) with cnn.so on every connection."""
    import sqlite_utils
    import sqlite_utils.cli

    if not has_plugins(sqlite_utils):
        # Every command opens its connections through Database(); this process
        # runs only sqlite-utils, so wrapping its constructor reaches them all.
        database = sqlite_utils.Database
        original_init = database.__init__

        def init(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            prepare_connection(self.conn)

        database.__init__ = init
    return sqlite_utils.cli.cli(args=argv, prog_name="sqlite-utils-cnn")
