"""The review web app: aiohttp.web + Jinja2 templates + vendored htmx, over one run directory or a folder of runs.

aiohttp is what the HTTP teacher already uses, so the app adds no server dependency; it is async, so a retrain or
an export runs in a worker thread while pages keep answering. Pages are rendered on the server; htmx swaps
the parts that change (a filtered table, one row after a decision). Rows are filtered, sorted and paged by an
in-memory index (`llmaug.review.index`), so the browser only ever holds one page.

Security:
- binds 127.0.0.1 by default, and then answers only requests whose Host is the loopback address it is bound to
  (a DNS-rebinding page cannot reach it);
- on any other host, every request must carry the random token printed in the URL (`?token=`);
- requests that change something (POST) must carry the token in the `X-Llmaug-Token` header as well, which a
  cross-site form or page cannot set, and an `Origin`, when sent, must be this server;
- files are served only from the run directory's plots/, reviewed/export/ and the package's static folder,
  by names checked against those folders; row text is escaped (Jinja autoescape) and a Content-Security-Policy
  allows no inline script; settings whose names suggest a secret are hidden (keys are named by env var only).
"""

from __future__ import annotations

import asyncio
import hmac
import html
import re
import secrets
import socket
import threading
import webbrowser
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web
from rich.console import Console

from llmaug.errors import UserError
from llmaug.review import views
from llmaug.decisions import append_decisions, decide, load_decisions, undo_last
from llmaug.review.export import TARGETS, export, export_path
from llmaug.review.index import Query, RowIndex
from llmaug.review.rundata import RunData, find_runs, is_run_dir

PACKAGE = Path(__file__).parent
STATIC = PACKAGE / "static"
TEMPLATES = PACKAGE / "templates"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_HEADER = "X-Llmaug-Token"
PLOT_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.png$")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


@dataclass
class Job:
    """A retrain in a worker thread: running, then done with a result or an error."""

    task: asyncio.Future | None = None
    result: dict | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


@dataclass
class RunState:
    """One run, loaded on first visit: its files, the row index with the decisions so far, and its jobs."""

    key: str
    name: str
    data: RunData
    index: RowIndex
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    retrain: Job = field(default_factory=Job)
    _children: dict | None = None

    @classmethod
    def load(cls, key: str, name: str, path: Path) -> "RunState":
        data = RunData(path, name)
        return cls(key, name, data, RowIndex(data, load_decisions(path)))

    def children(self, round: int, parent_id: str) -> list[int]:
        """Positions of the rows spawned from `parent_id` by round `round`'s errors."""
        if self._children is None:
            spawned = defaultdict(list)
            for i, row in enumerate(self.index.rows):
                if row.parent_ids:
                    spawned[(row.round, row.parent_ids[0])].append(i)
            self._children = spawned
        return self._children.get((round, parent_id), [])


class ReviewApp:
    """The served root (a run directory or a folder of runs), its security settings and its loaded runs."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", token: str | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError("no such folder", root)
        self.runs = find_runs(self.root)
        if not self.runs:
            raise UserError("not a run directory, and no run directories below it (looked for config.yaml, "
                            "summary.json or rounds/)", root)
        self.host = host
        self.token = token or secrets.token_urlsafe(24)
        self.token_in_url = host not in LOOPBACK
        self.port: int | None = None
        self.single = is_run_dir(self.root)
        self.keys = _run_keys(self.runs)
        self.loaded: dict[str, RunState] = {}
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True,
        )
        self.templates.filters.update(views.FILTERS)

    # ----------------------------------------------------------------------------------------- the app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard, errors_as_notices], client_max_size=1024**2)
        app.add_routes([
            web.get("/", self.home),
            web.get("/static/{name}", self.static),
            web.get("/runs/{run}/", self.overview),
            web.get("/runs/{run}/rows", self.rows),
            web.get("/runs/{run}/api/rows", self.api_rows),
            web.get("/runs/{run}/errors", self.errors),
            web.get("/runs/{run}/plots/{name}", self.plot),
            web.get("/runs/{run}/report", self.report),
            web.post("/runs/{run}/decide", self.decide),
            web.post("/runs/{run}/undo", self.undo),
            web.post("/runs/{run}/retrain", self.start_retrain),
            web.get("/runs/{run}/retrain", self.retrain_status),
            web.post("/runs/{run}/export", self.export),
            web.get("/runs/{run}/download/{format}", self.download),
        ])
        return app

    def url(self, path: str, **params: Any) -> str:
        """An absolute path on this server with `params` (and the token, when it must be in every URL)."""
        params = {key: value for key, value in params.items() if value not in (None, "")}
        if self.token_in_url:
            params["token"] = self.token
        return path + ("?" + urlencode(params) if params else "")

    def public_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}" + self.url("/")

    # -------------------------------------------------------------------------------------------- security

    @web.middleware
    async def guard(self, request: web.Request, handler):
        refusal = self.refusal(request)
        if refusal is not None:
            raise web.HTTPForbidden(text=refusal)
        response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def refusal(self, request: web.Request) -> str | None:
        """Why `request` is refused, or None."""
        if not self.token_in_url and request.host not in self.allowed_hosts():
            return "this server answers on its loopback address only"
        if self.token_in_url and not _same(request.query.get("token"), self.token):
            return "a token is required: use the URL the server printed"
        if request.method not in ("GET", "HEAD"):
            if not _same(request.headers.get(TOKEN_HEADER), self.token):
                return f"changes need the {TOKEN_HEADER} header (sent by the review page itself)"
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.host:
                return "cross-site requests are refused"
        return None

    def preload(self) -> None:
        """Load a single run now rather than on the first request, so that the first page answers at once."""
        if self.single:
            key = next(iter(self.keys))
            self.loaded[key] = RunState.load(key, self.keys[key], self.runs[self.keys[key]])

    def allowed_hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"}

    # ----------------------------------------------------------------------------------------------- runs

    async def run_state(self, request: web.Request) -> RunState:
        key = request.match_info["run"]
        if key not in self.keys:
            raise web.HTTPNotFound(text=f"no run {key!r} here")
        if key not in self.loaded:
            name = self.keys[key]
            self.loaded[key] = await asyncio.to_thread(RunState.load, key, name, self.runs[name])
        return self.loaded[key]

    def render(self, template: str, request: web.Request | None = None, **values: Any) -> web.Response:
        page = self.templates.get_template(template).render(
            url=self.url, token=self.token, token_header=TOKEN_HEADER, single=self.single, **values)
        return web.Response(text=page, content_type="text/html")

    def run_url(self, state: RunState, path: str = "", **params: Any) -> str:
        return self.url(f"/runs/{state.key}/{path}", **params)

    def run_page(self, template: str, state: RunState, view: str, **values: Any) -> web.Response:
        return self.render(template, run=state.data, state=state, view=view,
                           run_url=lambda path="", **params: self.run_url(state, path, **params), **values)

    # ---------------------------------------------------------------------------------------------- views

    async def home(self, request: web.Request) -> web.Response:
        if self.single:
            raise web.HTTPFound(self.url(f"/runs/{next(iter(self.keys))}/"))
        self.runs = find_runs(self.root)
        self.keys = _run_keys(self.runs)
        runs = [views.run_card(key, name, self.runs[name]) for key, name in self.keys.items()]
        return self.render("picker.html", root=self.root, runs=runs)

    async def overview(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        return self.run_page("overview.html", state, "overview", facts=views.overview(state.data))

    async def rows(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        query = Query.from_params(request.query)
        page = state.index.page(query)
        template = "_results.html" if _partial(request) else "rows.html"
        return self.run_page(template, state, "rows", page=page, query=query, row_view=views.RowView.factory(state))

    async def api_rows(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        query = Query.from_params(request.query)
        page = state.index.page(query)
        make = views.RowView.factory(state)
        return web.json_response({"total": page.total, "page": query.page, "pages": page.pages,
                                  "status_counts": page.status_counts, "rows": [make(row).as_json() for row in page.rows]})

    async def errors(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        rounds = sorted(state.data.errors)
        chosen = request.query.get("round") or (str(rounds[0]) if rounds else "")
        if chosen and (not chosen.isdigit() or int(chosen) not in state.data.errors):
            raise UserError(f"no round {chosen!r} in this run", "round")
        groups = views.error_groups(state, int(chosen)) if chosen else []
        return self.run_page("errors.html", state, "errors", rounds=rounds, chosen=chosen, groups=groups)

    async def plot(self, request: web.Request) -> web.StreamResponse:
        state = await self.run_state(request)
        return _file_inside(state.data.path / "plots", request.match_info["name"], PLOT_NAME)

    async def report(self, request: web.Request) -> web.StreamResponse:
        state = await self.run_state(request)
        path = state.data.path / "report.html"
        if not path.is_file():
            raise web.HTTPNotFound(text="this run has no report.html yet")
        response = web.FileResponse(path, headers={"Content-Type": "text/html; charset=utf-8"})
        response.headers["Content-Security-Policy"] = REPORT_CSP  # the report is self-contained: inline style, data: images
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        response = _file_inside(STATIC, request.match_info["name"], re.compile(r"^[a-z0-9.-]+\.(js|css|png|txt)$"))
        response.headers["Cache-Control"] = "max-age=3600"
        return response

    # -------------------------------------------------------------------------------------------- actions

    async def decide(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        form = await request.post()
        action = str(form.get("action", ""))
        if action not in ("reject", "restore", "relabel"):
            raise UserError(f"unknown action {action!r}; choose from reject, restore, relabel", "action")
        label = str(form.get("label", "")).strip() or None
        if action == "relabel" and label is None:
            raise UserError("relabel needs a label", "label")
        index = state.index
        row_ids, recorded_filter = _chosen_rows(index, form)
        async with state.lock:
            made = decide(index.review, action, row_ids, index.current_labels(row_ids), label, recorded_filter)
            await asyncio.to_thread(append_decisions, state.data.path, made)
            index.apply(made)
        return self.after_change(state, form, len(made), action)

    async def undo(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        form = await request.post()
        async with state.lock:
            made = undo_last(state.index.review)
            await asyncio.to_thread(append_decisions, state.data.path, made)
            state.index.apply(made)
        return self.after_change(state, form, len(made), "undo")

    def after_change(self, state: RunState, form, changed: int, action: str) -> web.Response:
        """A single row's decision re-renders that row; a bulk action or an undo re-renders the results."""
        notice = views.change_notice(action, changed)
        if form.get("scope") != "filter" and action != "undo" and "row_id" in form:
            row = state.index.row(str(form["row_id"]))
            return self.run_page("_row.html", state, "rows", v=views.RowView.factory(state)(row))
        query = Query.from_params(form)
        return self.run_page("_results.html", state, "rows", page=state.index.page(query), query=query,
                             row_view=views.RowView.factory(state), notice=notice)

    async def start_retrain(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        if not state.retrain.running:
            from llmaug.review.retrain import retrain

            quiet = Console(quiet=True)
            state.retrain = Job(asyncio.ensure_future(asyncio.to_thread(retrain, state.data.path, quiet)))
            state.retrain.task.add_done_callback(lambda task: _finish_retrain(state, task))
        return self.run_page("_retrain.html", state, "overview", job=state.retrain)

    async def retrain_status(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        return self.run_page("_retrain.html", state, "overview", job=state.retrain)

    async def export(self, request: web.Request) -> web.Response:
        state = await self.run_state(request)
        form = await request.post()
        fmt = str(form.get("format", ""))
        export_path(state.data.path, fmt)  # checks the format
        path = await asyncio.to_thread(export, state.data.path, fmt, state.data, state.index.review)
        return self.run_page("_export.html", state, "overview", fmt=fmt, path=path, downloadable=path.is_file())

    async def download(self, request: web.Request) -> web.StreamResponse:
        state = await self.run_state(request)
        fmt = request.match_info["format"]
        if fmt not in TARGETS:
            raise web.HTTPNotFound(text="no such export")
        path = export_path(state.data.path, fmt)
        if not path.is_file():
            raise web.HTTPNotFound(text="not exported yet (or a folder: find it in the run directory)")
        return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'})


@web.middleware
async def errors_as_notices(request: web.Request, handler):
    """Bad input (a filter value, an action) answers 400 with a one-line notice, which htmx shows in #notice."""
    try:
        return await handler(request)
    except UserError as err:
        if not _partial(request):
            return web.Response(status=400, text=str(err), content_type="text/plain")
        # htmx puts the answer into the page as HTML: the message (which may quote what was sent) is escaped
        response = web.Response(status=400, text=html.escape(str(err)), content_type="text/html")
        response.headers["HX-Retarget"] = "#notice"
        response.headers["HX-Reswap"] = "innerHTML"
        return response


def _chosen_rows(index: RowIndex, form) -> tuple[list[str], dict | None]:
    """The rows a decision is for: those matching the filter sent (a bulk action, which records the filter), or
    the `row_id`s sent, which must be rows of the data."""
    if form.get("scope") == "filter":
        query = Query.from_params(form)
        return index.decidable(index.matching(query)), query.filters() or {"all": "rows"}
    row_ids = [str(value) for value in form.getall("row_id", [])]
    unknown = [row_id for row_id in row_ids if index.row(row_id) is None]
    if not row_ids or unknown:
        raise UserError(f"no such row {unknown[0] if unknown else ''!r}", "row_id")
    if len(index.decidable([index.position[row_id] for row_id in row_ids])) < len(row_ids):
        raise UserError("rows the filters rejected are not part of the data; there is nothing to decide", "row_id")
    return row_ids, None


def _finish_retrain(state: RunState, task: asyncio.Future) -> None:
    try:
        state.retrain.result = task.result()
    except UserError as err:
        state.retrain.error = str(err)
    except Exception as err:  # shown on the page; the server keeps running
        state.retrain.error = f"{type(err).__name__}: {err}"


def _file_inside(folder: Path, name: str, pattern: re.Pattern) -> web.FileResponse:
    """The file `name` directly inside `folder`, refusing anything that resolves outside it (`..`, links)."""
    if not pattern.match(name):
        raise web.HTTPNotFound(text="no such file")
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file():
        raise web.HTTPNotFound(text="no such file")
    return web.FileResponse(path)


def _partial(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _run_keys(runs: dict[str, Path]) -> dict[str, str]:
    """URL keys for run names: the name with '/' spelled '~' (a path segment cannot hold a '/')."""
    keys: dict[str, str] = {}
    for name in runs:
        key = re.sub(r"[^A-Za-z0-9_.~-]", "_", name.replace("/", "~"))
        while key in keys:
            key += "_"
        keys[key] = name
    return keys


# ------------------------------------------------------------------------------------------------- serving


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so that the URL is known (port 0: any free port) and a browser opened at once connects."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}", "--port" if port else "--host") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def serve(root: str | Path, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          console: Console | None = None) -> None:
    """Serve until Ctrl-C."""
    console = console or Console()
    review = ReviewApp(root, host)
    review.preload()
    sock = bind(host, port)
    review.port = sock.getsockname()[1]
    url = review.public_url()
    console.print(f"llmaug review: {url}  (Ctrl-C stops)", soft_wrap=True, highlight=False)
    if review.token_in_url:
        console.print("the token in the URL is needed for every request; share it only with people who may edit this run",
                      highlight=False)
    if open_browser:
        webbrowser.open(url)
    web.run_app(review.app(), sock=sock, print=None, handle_signals=True)


class BackgroundServer:
    """The app on a free loopback port in a thread, for tests and benchmarks: `with BackgroundServer(run) as s:`."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1"):
        self.review = ReviewApp(root, host)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return self.review.public_url()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "BackgroundServer":
        self.review.preload()
        sock = bind(self.review.host, 0)
        self.review.port = sock.getsockname()[1]
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(sock), self.loop).result(timeout=60)
        return self

    async def _start(self, sock: socket.socket) -> None:
        self.runner = web.AppRunner(self.review.app())
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()

    def wait_for_retrain(self, timeout: float = 120) -> None:
        """Block until every retrain started so far has finished (tests)."""
        async def wait() -> None:
            tasks = [state.retrain.task for state in self.review.loaded.values() if state.retrain.task]
            if tasks:
                await asyncio.wait(tasks)
        asyncio.run_coroutine_threadsafe(wait(), self.loop).result(timeout=timeout)

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()
