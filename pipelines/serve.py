"""``catalog-tagger serve``: real-time tagging over HTTP.

``POST /tag`` takes one catalog record (a JSON object) or a JSON list of them, in
the canonical fields (``video_id``, ``title``, ``description``, ``tags`` as a list
or a delimited string; a model trained with ``--field`` mappings reads its own
schema), parsed by the batch jobs' intake (``transforms.records.to_canonical``).
It answers a JSON list of the rows ``catalog-tagger predict`` writes: top-k
``labels`` with scores, thresholded ``predicted`` (the model's tuned thresholds),
``model_version``, ``tagged_at`` and ``empty_text`` when no word survived.
``GET /healthz`` answers the model version.

The export's ``raw`` signature cleans and tokenizes in-graph, so one request is
one TensorFlow call (``LoadedTagger.score_raw``). A request the client got wrong
gets a 4xx and one line of JSON, ``{"error": "..."}``; a bug gets a 500 and is
logged. The HTTP server is waitress (the optional ``serve`` extra): a threaded
WSGI server, pure Python, no dependencies. It buffers each body before the app
sees it, up to ``BUFFER_FACTOR`` times ``--max-body-bytes``; bodies over
``--max-body-bytes`` get a JSON 413 from the app, bodies past the buffer limit
waitress's own (plain-text) 413.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import signal
import time

from apache_beam.io.filesystems import FileSystems

from models import artifacts, card
from pipelines.components import jobs
from pipelines.components.catalog_io import EMPTY_TEXT
from pipelines.components.steps import raw_text
from pipelines.components.tags import TagRows
from transforms.records import RecordError, RecordSchema, to_canonical

PROG = "catalog-tagger serve"
MAX_BODY_BYTES = 4 * 1024 * 1024
BUFFER_FACTOR = 8
INSTALL_HINT = "serve needs its HTTP server: pip install catalog-tagger[serve]"
JSON_HEADER = ("Content-Type", "application/json")
logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    model_dir: str
    host: str = "127.0.0.1"
    port: int = 8080
    top_k: int = 20
    threads: int = 4
    max_body_bytes: int = MAX_BODY_BYTES


class HttpError(Exception):
    """A request the client got wrong: its status line and a one-line message."""

    def __init__(self, status: str, message: str, headers: tuple = ()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message.splitlines()[0], headers


class Tagger:
    """The model behind the endpoint: source rows in, predict's output rows out."""

    def __init__(self, model_dir: str, top_k: int = 20):

        self.model = load_model(model_dir)
        export_dir = self.model.export_dir
        self.schema = model_schema(export_dir)
        self.version = self.model.model_version()
        # float64 from the file, as predict reads them (LoadedTagger keeps float32)
        tuned = artifacts.read_extra(export_dir, artifacts.THRESHOLDS_FILE)
        thresholds = [tuned[name] for name in self.model.labels]
        self._rows = TagRows(self.model.labels, thresholds, top_k, self.version)
        self.model.score_raw([""], [""], [""])  # warm-up: the first call is slower

    def tag(self, payload: dict | list) -> list[dict]:
        """Predict's rows for a source record or a list of them; HttpError 400 on a bad one."""
        listed = isinstance(payload, list)
        rows = payload if listed else [payload]
        records = [self._canonical(row, i, listed) for i, row in enumerate(rows)]
        if not records:
            return []
        titles, descriptions, tags = zip(*(raw_text(r) for r in records), strict=True)
        out = self.model.score_raw(list(titles), list(descriptions), list(tags))
        tagged_at = datetime.datetime.now(datetime.UTC).isoformat()
        scored = zip(records, out["probabilities"], out["num_tokens"].tolist(), strict=True)
        return [
            self._rows.row({"video_id": r["video_id"], EMPTY_TEXT: n == 0}, p, tagged_at)
            for r, p, n in scored
        ]

    def _canonical(self, row, index: int, listed: bool) -> dict:
        where = f"record {index}" if listed else "the record"
        if not isinstance(row, dict):
            raise HttpError("400 Bad Request", f"{where} is a {_json_type(row)}, not an object")
        try:
            return to_canonical(row, self.schema)
        except RecordError as err:
            raise HttpError("400 Bad Request", f"{where}: {err}") from None


def load_model(model_dir: str):
    """The export as a ``LoadedTagger``; a one-line JobError when it cannot serve."""
    from models.serving import LoadedTagger, ModelMismatchError

    export_dir = FileSystems.join(model_dir, artifacts.SAVED_MODEL_DIR)
    jobs.require(FileSystems.exists(export_dir), f"no exported model in {model_dir!r}")
    try:
        model = LoadedTagger(export_dir)
    except KeyError as err:  # e.g. exported before the raw signature
        raise jobs.JobError(
            f"the model in {export_dir!r} lacks the {err} signature (exported by an older "
            "catalog-tagger? train it again)"
        ) from None
    except (ModelMismatchError, OSError, ValueError) as err:
        raise jobs.JobError(f"unusable model in {export_dir!r}: {err}".splitlines()[0]) from None
    jobs.require(
        model.kind == card.TEXT,
        f"serve tags text-only models; {export_dir!r} reads audio/visual features",
    )
    return model


def model_schema(export_dir: str) -> RecordSchema:
    """The record schema the model was trained with (predict's default)."""
    from pipelines.components.preprocessing import PreprocessConfig

    path = FileSystems.join(export_dir, artifacts.EXTRA_DIR, artifacts.PREPROCESS_CONFIG_FILE)
    if not FileSystems.exists(path):
        return RecordSchema()
    trained = artifacts.read_extra(export_dir, artifacts.PREPROCESS_CONFIG_FILE)
    return jobs.from_jsonable(PreprocessConfig, trained).schema


def _json_type(value) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


class App:
    """The WSGI application: routes, body limits, JSON in and out."""

    def __init__(self, tagger: Tagger, max_body_bytes: int = MAX_BODY_BYTES):
        self._tagger, self._max_body = tagger, max_body_bytes
        self._routes = {"/tag": ("POST", self._tag), "/healthz": ("GET", self._health)}

    def __call__(self, environ, start_response):
        start, headers = time.perf_counter(), [JSON_HEADER]
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        try:
            status, payload = "200 OK", self._route(method, path, environ)
        except HttpError as err:
            status, payload = err.status, {"error": err.message}
            headers += err.headers
        except Exception:  # noqa: BLE001 - a bug: logged, and the client gets a 500
            logger.exception("serve: %s %s failed", method, path)
            status, payload = "500 Internal Server Error", {"error": "internal server error"}
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        if logger.isEnabledFor(logging.INFO):
            took = (time.perf_counter() - start) * 1000
            logger.info("serve: %s %s %s %.1f ms", method, path, status[:3], took)
        return [body]

    def _route(self, method: str, path: str, environ):
        if path not in self._routes:
            raise HttpError("404 Not Found", f"no endpoint {path}: POST /tag or GET /healthz")
        allowed, handler = self._routes[path]
        if method != allowed:
            message = f"{path} takes {allowed}, not {method}"
            raise HttpError("405 Method Not Allowed", message, (("Allow", allowed),))
        return handler(environ)

    def _health(self, environ) -> dict:
        return {"status": "ok", "model_version": self._tagger.version}

    def _tag(self, environ) -> list[dict]:
        payload = parse_body(read_body(environ, self._max_body))
        return self._tagger.tag(payload)


def read_body(environ, limit: int) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError("400 Bad Request", "bad Content-Length") from None
    if length > limit:
        raise HttpError("413 Content Too Large", f"body of {length} bytes; at most {limit}")
    return environ["wsgi.input"].read(length)


def parse_body(body: bytes):
    """The body's JSON: a record (object) or a list; HttpError 400 otherwise."""
    try:
        payload = json.loads(body)
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise HttpError("400 Bad Request", f"body is not JSON: {err}") from None
    except RecursionError:
        raise HttpError("400 Bad Request", "body is not JSON: nested too deeply") from None
    if not isinstance(payload, dict | list):
        message = (
            f"body must be a record (JSON object) or a list of them, not a {_json_type(payload)}"
        )
        raise HttpError("400 Bad Request", message)
    return payload


def waitress_factory():
    """waitress's ``create_server``; a one-line JobError without the ``serve`` extra."""
    try:
        from waitress.server import create_server
    except ImportError:
        raise jobs.JobError(INSTALL_HINT) from None
    return create_server


def listen(config: ServeConfig, app, factory=None):
    """A waitress server bound to ``config.host``/``port`` (not serving yet)."""
    factory = factory or waitress_factory()
    try:
        return factory(
            app, host=config.host, port=config.port, threads=config.threads,
            max_request_body_size=config.max_body_bytes * BUFFER_FACTOR,
            ident="catalog-tagger",
        )  # fmt: skip
    except OSError as err:
        raise jobs.JobError(f"cannot listen on {config.host}:{config.port}: {err}") from None


def bound_port(server) -> int:
    if hasattr(server, "effective_port"):
        return server.effective_port
    return server.effective_listen[0][1]  # several sockets (a name resolving to several)


def serve(config: ServeConfig) -> int:
    """Loads the model, binds, prints one line, serves until Ctrl-C (or SIGTERM)."""
    factory = waitress_factory()  # without the extra, fail before the (slow) model load
    try:
        tagger = Tagger(config.model_dir, config.top_k)
        server = listen(config, App(tagger, config.max_body_bytes), factory)
    except KeyboardInterrupt:
        return 130
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"serving {tagger.version} on http://{host}:{bound_port(server)}/tag", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when launched with SIGINT ignored
        signal.signal(signum, signal.default_int_handler)  # (nohup, a non-interactive "&")
    server.run()  # returns on KeyboardInterrupt, once its threads are done
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Tag catalog records over HTTP.")
    parser.add_argument("--model-dir", required=True, help="A train --model-dir.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=8080, help="Port (0: any free port).")
    parser.add_argument("--top-k", type=int, default=20, help="Labels kept per video.")
    parser.add_argument("--threads", type=int, default=4, help="Request worker threads.")
    parser.add_argument(
        "--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="Largest request body."
    )
    args = parser.parse_args(argv)
    jobs.require(args.top_k >= 1, f"--top-k must be >= 1, not {args.top_k}")
    jobs.require(args.threads >= 1, f"--threads must be >= 1, not {args.threads}")
    jobs.require(0 <= args.port <= 65535, f"--port must be in [0, 65535], not {args.port}")
    jobs.require(args.max_body_bytes >= 1, "--max-body-bytes must be >= 1")
    return serve(ServeConfig(**vars(args)))
