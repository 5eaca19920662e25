"""The labeling page's web server: a Flask app served by waitress, local by default.

Routes (every error is JSON ``{"error": "<one line>"}`` with a 4xx status, nothing written)::

    GET  /                      the page (static/index.html, app.js, style.css)
    GET  /api/state             the current round's queue, labels, marks, counts, the job
    GET  /api/item/<index>      preview of one item (image URL, text, or row values)
    GET  /image/<index>         one item's image, chosen by dataset index (never by path)
    POST /api/label             {"index", "class", "expect_id", "annotator"?}   (409 on conflict)
    POST /api/undo              {"id", "annotator"?, "override"?}: one label of this round, its giver's
    POST /api/flag              {"index", "flag": "skip" | "unsure" | null}
    POST /api/round             {"budget"?, "strategy"?}: the next round, in the background
    GET  /api/round             the background round's progress and result
    GET  /api/status            rounds, labels per class; GET /learning_curve.png the curve

Safety: the server binds 127.0.0.1 unless told otherwise with ``allow_remote``, and
requires a token on every request, on loopback too (any local user of a shared machine
could otherwise read every item and write labels): ``?token=`` once in the URL ``al label``
prints, then kept in an HttpOnly SameSite cookie so reloads work, or the ``X-Token`` header. Writes take JSON only (a cross-site form cannot post it without a CORS preflight,
which this server never grants) and, on loopback, only with a loopback ``Host`` header (a
DNS-rebinding page names another host). Bodies over :data:`MAX_BODY` bytes get 413.
"""
import hmac
import ipaddress
import re
import secrets
import signal
import threading
import urllib.parse
from pathlib import Path

from labelnext.labeling.session import LabelingSession, RequestError
from labelnext.loop.project import LabelingProject
from labelnext.utils.extras import require

# Flask and waitress are the 'label' extra: without them, importing this module says so in one line.
for _package in ("flask", "waitress"):
    require(_package, "label", "al label")

from flask import Flask, jsonify, make_response, request, send_file  # noqa: E402
from waitress import create_server, wasyncore  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 16 * 1024
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
TOKEN_COOKIE = "al_label_token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error(status, message, **extra):
    return make_response(jsonify(error=" ".join(str(message).split()), **extra), status)


def _json_body():
    if not request.is_json:
        raise RequestError(415, "send the request body as JSON (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return body


def create_app(session, *, token=None, loopback_port=None):
    """The Flask app over a :class:`labeling.session.LabelingSession`.

    Parameters
    ----------
    session : LabelingSession
    token : str, optional
        When given, every request must carry it (query ``token``, cookie or ``X-Token``).
    loopback_port : int, optional
        When given (a loopback binding), requests must name a loopback host in ``Host``.
    """
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False
    # '/image//etc/passwd' must reach the index check (400), not be redirected to another URL.
    app.url_map.merge_slashes = False

    @app.before_request
    def guard():
        if token is not None:
            given = request.args.get("token") or request.headers.get("X-Token") or request.cookies.get(TOKEN_COOKIE)
            if not given or not hmac.compare_digest(given.encode(), token.encode()):
                return _error(403, "this server needs its token: open the URL `al label` printed (with ?token=...)")
        if loopback_port is not None and re.sub(r":\d+$", "", request.host) not in LOOPBACK_NAMES:
            return _error(403, f"Host {request.host!r} is not this local server; open http://127.0.0.1:"
                               f"{loopback_port}/")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, f"request body of {request.content_length} bytes; at most {MAX_BODY} bytes allowed")
        return None

    @app.after_request
    def headers(resp):
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        resp.headers["Referrer-Policy"] = "no-referrer"
        if token is not None and request.args.get("token") == token:
            resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return resp

    @app.errorhandler(RequestError)
    def request_error(e):
        return _error(e.status, e, **({"current": e.current} if hasattr(e, "current") else {}))

    @app.errorhandler(HTTPException)
    def http_error(e):
        if e.code == 413:
            return _error(413, f"request body too large; at most {MAX_BODY} bytes allowed")
        return _error(e.code, e.description if e.code != 404 else f"no such page: {request.path[:80]!r}")

    @app.errorhandler(ValueError)
    def value_error(e):  # the store refusing a value the checks above let through
        return _error(400, e)

    @app.get("/")
    def index():
        return send_file(STATIC / "index.html", mimetype="text/html", max_age=0)

    @app.get("/api/state")
    def state():
        return jsonify(session.state())

    @app.get("/api/item/<path:raw>")
    def item(raw):
        return jsonify(session.preview(raw))

    @app.get("/image/<path:raw>")
    def image(raw):
        data, mime = session.image(raw)
        resp = make_response(data)
        resp.headers["Content-Type"] = mime
        # An index names the same image for the project's life (the data fingerprint is fixed).
        resp.headers["Cache-Control"] = "private, max-age=3600"
        return resp

    @app.post("/api/label")
    def label():
        body = _json_body()
        missing = {"index", "class", "expect_id"} - set(body)
        if missing:
            raise RequestError(400, f"missing fields {sorted(missing)}; send index, class and expect_id "
                                    "(null when the item was unlabeled)")
        return jsonify(session.label(body["index"], body["class"], expect_id=body["expect_id"],
                                     annotator=body.get("annotator")))

    @app.post("/api/undo")
    def undo():
        body = _json_body()
        if "id" not in body:
            raise RequestError(400, "missing field 'id': send the id of the label to undo")
        return jsonify(session.undo(body["id"], body.get("annotator"), override=body.get("override", False)))

    @app.post("/api/flag")
    def flag():
        body = _json_body()
        if "index" not in body:
            raise RequestError(400, "missing field 'index'")
        return jsonify(session.flag(body["index"], body.get("flag")))

    @app.post("/api/round")
    def start_round():
        body = _json_body()
        return jsonify(session.start_round(body.get("budget"), body.get("strategy"))), 202

    @app.get("/api/round")
    def round_job():
        return jsonify(session.job.as_dict())

    @app.get("/api/status")
    def status():
        return jsonify(session.status())

    @app.get("/learning_curve.png")
    def learning_curve():
        # Absolute: Flask resolves a relative path against the package folder, not the working directory.
        curve = Path(session.project.path).resolve() / "learning_curve.png"
        if not curve.is_file():
            raise RequestError(404, "no learning curve yet: it appears after a round with a held-out split")
        return send_file(curve, mimetype="image/png", max_age=0)

    return app


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


class LabelServer:
    """A waitress server for one project; :meth:`serve_forever` (Ctrl-C stops it) or :meth:`start`/:meth:`stop`.

    Parameters
    ----------
    project : str, Path or project.LabelingProject
        The project folder (opened here and closed by :meth:`stop`) or an open project.
    host : str
        Interface to bind; anything but a loopback address needs ``allow_remote=True``.
    port : int
        0 picks a free port (see :attr:`url`).
    annotator : str, optional
        Name recorded with labels whose request names none.
    allow_remote : bool
        Allow a non-loopback ``host``.
    token : str, optional
        The token every request must carry (default: a random one, printed in :attr:`url`).
    threads : int
        Request threads.
    """

    def __init__(self, project, *, host=DEFAULT_HOST, port=DEFAULT_PORT, annotator=None, allow_remote=False,
                 token=None, threads=4, progress=None):
        if not isinstance(host, str) or not host:
            raise ValueError(f"--host must be an interface address, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"--port must be an integer in 0-65535, got {port!r}")
        loopback = is_loopback(host)
        if not loopback and not allow_remote:
            raise ValueError(f"--host {host} makes the page reachable from other machines: add --allow-remote "
                             "(a token is then required) or use the default --host 127.0.0.1")
        if token is not None and (not isinstance(token, str) or len(token) < 16 or not token.isprintable()):
            raise ValueError("--token must be at least 16 printable characters")
        self.token = token if token is not None else secrets.token_urlsafe(24)
        self._owns_project = not isinstance(project, LabelingProject)
        self.project = LabelingProject(project, progress=progress) if self._owns_project else project
        try:
            self.session = LabelingSession(self.project, annotator=annotator)
            # The app needs the port waitress picks (port 0), so the server calls it through self.
            self._server = create_server(self._wsgi, host=host, port=port, threads=threads, ident="al-label",
                                         max_request_body_size=1 << 20, clear_untrusted_proxy_headers=True)
        except BaseException:
            if self._owns_project:
                self.project.close()
            raise
        self.port = int(self._server.effective_port)
        self.app = create_app(self.session, token=self.token,
                                              loopback_port=self.port if loopback else None)
        shown = f"[{host}]" if ":" in host else host
        # Quoted: a --token holding + # & would otherwise print a URL that answers 403.
        self.url = f"http://{shown}:{self.port}/?token={urllib.parse.quote(self.token, safe='')}"
        self._thread = None

    def _wsgi(self, environ, start_response):
        return self.app(environ, start_response)

    def serve_forever(self):
        """Serve until Ctrl-C or SIGTERM (waitress turns either into a clean shutdown), then
        close the project."""
        if threading.current_thread() is threading.main_thread():
            # A shell starts background jobs with SIGINT ignored; `al label &` must still stop on it.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self._server.run()
        finally:
            self._close()

    def start(self):
        """Serve in a background thread (tests, embedding); returns self."""
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="al-label-server")
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, wait for the server thread, close the project (idempotent)."""
        server = self._server
        # Close every socket (open keep-alive connections too) inside the server's own loop
        # thread, where the loop cannot be polling them; the loop ends once its map is empty.

        def close_all():
            wasyncore.close_all(server._map, ignore_all=True)

        if self._thread is not None:
            try:
                server.trigger.pull_trigger(close_all)
            except OSError:  # the loop already dropped its trigger (seen once in CI: EBADF); close from here
                close_all()
            self._thread.join(timeout=10)
            self._thread = None
        else:
            close_all()
        server.task_dispatcher.shutdown()
        self._close()

    def _close(self):
        if self._owns_project:
            self.project.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
