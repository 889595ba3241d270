"""serve.py - a local web page to write a digit on and see what a model of
the database reads: the canvas, the 28x28 image the model sees
(cnn_preprocess), the probabilities of the classes (cnn_predict_proba), the
models of the database and the accuracy history of the chosen one
(cnn_history_svg). Started by tools/serve.sh, which finds or builds cnn.so.

Python's standard library only, run by /usr/bin/python3 (its sqlite3 module
can load extensions). The page is tools/page/; the API:

  GET  /api/models                -> {"models": [...], "default": name or null}
  GET  /api/history.svg?model=M   -> the model's accuracy chart (SVG)
  POST /api/predict[?model=M]     body: a PNG, JPEG, GIF or BMP file
                                  -> {"model", "predicted", "probabilities", "seen"}

Why it is safe to leave running: the database is opened read-only and only
fixed, parameterised SELECTs run on it; extension loading is switched off
again once cnn.so is in. A request body is capped (MAX_BODY, 413 beyond) and
must carry an image signature (415 otherwise) before the extension's decoder
checks it; every error is a JSON {"error": ...} with its HTTP status, never a
stack trace. Only the page's own files are served (no file system paths
come from a request). Bound to a loopback address, the server answers only
requests that name it in their Host header, so another web site cannot reach
it through DNS rebinding. Each request thread borrows a connection from a
pool and gives it back: a connection is never used by two threads at once,
and a connection keeps its cached model between requests.
"""
import argparse
import base64
import contextlib
import http.server
import json
import os
import queue
import socket
import sqlite3
import sys
import threading
import traceback
import urllib.parse

MAX_BODY = 2 * 1024 * 1024  # bytes of an uploaded image
DRAIN_LIMIT = 16 * 1024 * 1024  # a larger refused body is not read: the connection closes
PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page")
STATIC = {  # URL path -> (file in PAGE_DIR, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
}
# The file types the page accepts, by their first bytes; the decoder then
# checks the whole file.
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
SEEN_SCALE = 8  # the 28x28 image the model sees, as a 224x224 PNG
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Pool:
    """Connections to the database, each lent to one thread at a time and
    opened on demand, at most `size` of them."""

    def __init__(self, database, so, size):
        self.database, self.so = database, so
        self.idle = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(size)

    def open(self):
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.database)) + "?mode=ro"
        # check_same_thread off: the pool hands a connection to one thread at a time.
        conn = sqlite3.connect(uri, uri=True, timeout=10, check_same_thread=False,
                               isolation_level=None)
        try:
            conn.enable_load_extension(True)
            conn.load_extension(self.so)
            conn.enable_load_extension(False)
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def connection(self):
        with self.slots:
            try:
                conn = self.idle.get_nowait()
            except queue.Empty:
                conn = self.open()
            try:
                yield conn
            finally:
                self.idle.put(conn)


def has_models(conn):
    return conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = "
                        "'cnn_models'").fetchone() is not None


def list_models(conn):
    if not has_models(conn):
        return {"models": [], "default": None}
    rows = conn.execute(
        "SELECT m.name, m.params, m.epochs, e.accuracy, e.val_accuracy FROM cnn_models AS m "
        "LEFT JOIN cnn_epochs AS e ON e.model = m.name AND e.epoch = m.epochs "
        "ORDER BY m.name").fetchall()
    models = [{"name": r[0], "params": r[1], "epochs": r[2], "accuracy": r[3],
               "val_accuracy": r[4]} for r in rows]
    default = conn.execute("SELECT cnn_default()").fetchone()[0] if models else None
    return {"models": models, "default": default}


def model_named(conn, name):
    """The model a request asks for: its name, or the default model."""
    if not has_models(conn):
        raise HttpError(404, "this database has no model: train one with cnn_train")
    if name is None:
        name = conn.execute("SELECT cnn_default()").fetchone()[0]
        if name is None:
            raise HttpError(404, "this database has no model: train one with cnn_train")
    elif conn.execute("SELECT 1 FROM cnn_models WHERE name = ?", (name,)).fetchone() is None:
        raise HttpError(404, f"no model named '{name}'")
    return name


def predict(conn, name, image):
    try:
        proba, seen = conn.execute(
            "SELECT cnn_predict_proba(?1, ?2), cnn_image_png(cnn_preprocess(?2), ?3)",
            (name, image, SEEN_SCALE)).fetchone()
    except sqlite3.OperationalError as e:
        # The extension's own message names the function and the problem.
        if str(e).startswith("cnn_"):
            raise HttpError(400, str(e)) from None
        raise
    probabilities = json.loads(proba)
    return {
        "model": name,
        "predicted": max(range(len(probabilities)), key=probabilities.__getitem__),
        "probabilities": probabilities,
        "seen": "data:image/png;base64," + base64.b64encode(seen).decode("ascii"),
    }


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "sqlite-cnn-page"
    sys_version = ""  # the Server header does not advertise the Python version
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may take to send its request

    def __getattr__(self, name):
        # Every method besides GET and POST (HEAD, PUT, OPTIONS, ...).
        if name.startswith("do_"):
            return self.refuse_method
        raise AttributeError(name)

    def refuse_method(self):
        self.send_json(405, {"error": f"method {self.command} not allowed: only GET and POST"},
                       {"Allow": "GET, POST"})

    def log_message(self, format, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

    def send_error(self, code, message=None, explain=None):
        # http.server's own refusals (a bad request line, a long header, ...),
        # as JSON like every other error.
        self.close_connection = True
        self.send_json(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def send_body(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, headers=None):
        if status >= 400:
            # A refused request's body may be unread: the connection cannot
            # carry another request.
            self.close_connection = True
        body = json.dumps(obj).encode("utf-8")
        self.send_body(status, body, "application/json", headers)

    def check_host(self):
        allowed = self.server.allowed_hosts
        if allowed is not None and self.headers.get("Host", "").lower() not in allowed:
            raise HttpError(421, "this server answers requests to "
                            + " or ".join(sorted(allowed)) + " only")

    def respond(self, handle):
        try:
            self.check_host()
            handle()
        except HttpError as e:
            self.send_json(e.status, {"error": e.message})
        except sqlite3.Error as e:
            self.log_message("database error: %s", e)
            self.send_json(500, {"error": f"database error: {e}"})
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception:  # the client gets a line; the server's log keeps the details
            traceback.print_exc()
            self.close_connection = True
            self.send_json(500, {"error": "internal error (see the server's log)"})

    def do_GET(self):
        self.respond(self.get)

    def do_POST(self):
        self.respond(self.post)

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            query = urllib.parse.parse_qs(url.query, strict_parsing=False, max_num_fields=8)
        except ValueError:
            raise HttpError(400, "bad query string") from None
        return url.path, {k: v[-1] for k, v in query.items()}

    def get(self):
        path, query = self.route()
        if path in STATIC:
            name, content_type = STATIC[path]
            self.send_body(200, self.server.static[name], content_type)
        elif path == "/api/models":
            with self.server.pool.connection() as conn:
                self.send_json(200, list_models(conn))
        elif path == "/api/history.svg":
            with self.server.pool.connection() as conn:
                name = model_named(conn, query.get("model"))
                try:
                    svg = conn.execute("SELECT cnn_history_svg(?)", (name,)).fetchone()[0]
                except sqlite3.OperationalError as e:
                    raise HttpError(404, str(e)) from None
            self.send_body(200, svg.encode("utf-8"), "image/svg+xml; charset=utf-8")
        elif path == "/api/predict":
            raise HttpError(405, "send the image with POST")
        else:
            raise HttpError(404, f"no page at {path}")

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HttpError(411, "send the image with a Content-Length, not chunked")
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise HttpError(411, "send the image with a Content-Length")
        try:
            length = int(length)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise HttpError(400, "bad Content-Length") from None
        if length > MAX_BODY:
            # Read what a browser sends anyway, so that it sees the answer
            # rather than a reset connection; beyond that, just close.
            self.close_connection = True
            if length <= DRAIN_LIMIT:
                left = length
                while left > 0:
                    chunk = self.rfile.read(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
            raise HttpError(413, f"the image is {length} bytes; the limit is {MAX_BODY} "
                            f"({MAX_BODY // (1024 * 1024)} MB)")
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise HttpError(400, "the request body ended early")
        return body

    def post(self):
        path, query = self.route()
        if path != "/api/predict":
            self.read_body()  # keep the connection in step before refusing
            if path in STATIC or path in ("/api/models", "/api/history.svg"):
                raise HttpError(405, f"{path} is read with GET")
            raise HttpError(404, f"no page at {path}")
        image = self.read_body()
        if not image:
            raise HttpError(400, "the request has no body: send a PNG, JPEG, GIF or BMP image")
        if not image.startswith(SIGNATURES):
            raise HttpError(415, "not an image: send a PNG, JPEG, GIF or BMP file")
        with self.server.pool.connection() as conn:
            name = model_named(conn, query.get("model"))
            self.send_json(200, predict(conn, name, image))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class Server6(Server):
    address_family = socket.AF_INET6


def loopback(host):
    return host in ("localhost", "::1") or host.startswith("127.")


def main():
    ap = argparse.ArgumentParser(
        prog="sh tools/serve.sh",
        description="A local page to write a digit on and see what a model of the database reads.")
    ap.add_argument("database", nargs="?", default="mnist.db",
                    help="SQLite database with trained models (default: mnist.db, as "
                    "sql/demo.sh creates it)")
    ap.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1: this machine only)")
    ap.add_argument("--so", default=os.environ.get("CNN_SO") or "build/cnn.so",
                    help="the extension (default: $CNN_SO, else build/cnn.so)")
    args = ap.parse_args()
    if not 0 <= args.port <= 65535:
        ap.error(f"--port must be 0..65535; got {args.port}")
    if not os.path.isfile(args.database):
        sys.exit(f"serve: no database {args.database}: create one with sh sql/demo.sh "
                 "or name a database that has a trained model")
    if not os.path.isfile(args.so):
        sys.exit(f"serve: no extension at {args.so}: build it (cmake --build build) or set CNN_SO")

    pool = Pool(args.database, args.so, size=4)
    try:
        with pool.connection() as conn:
            models = list_models(conn)
    except sqlite3.Error as e:
        sys.exit(f"serve: cannot read {args.database}: {e}")

    server_class = Server6 if ":" in args.host else Server
    try:
        server = server_class((args.host, args.port), Handler)
    except OSError as e:
        sys.exit(f"serve: cannot listen on {args.host} port {args.port}: {e.strerror or e}")
    server.pool = pool
    server.static = {}
    for name, _ in STATIC.values():
        with open(os.path.join(PAGE_DIR, name), "rb") as f:
            server.static[name] = f.read()
    port = server.server_address[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if loopback(args.host):
        server.allowed_hosts = {f"{h}:{port}" for h in (shown, "localhost", "127.0.0.1", "[::1]")}
        reach = f"listening on {args.host} only (this machine); --host 0.0.0.0 opens it to the network"
    else:
        server.allowed_hosts = None
        reach = f"listening on {args.host}: reachable from the network, without authentication"
    count = len(models["models"])
    print(f"serving {args.database} ({count} model{'' if count == 1 else 's'}"
          + (f", default {models['default']}" if models["default"] else "") + f"); {reach}")
    if args.host in ("0.0.0.0", "::"):
        shown = "127.0.0.1" if args.host == "0.0.0.0" else "[::1]"
    print(f"open http://{shown}:{port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
