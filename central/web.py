"""`central serve`: the stamps' Digital Links answered for people (the trace page) and machines (linksets, EPCIS).

- `GET /01/{GTIN}[/10/{lot}]/21/{serial}[?17=…&11=…]` (any host: the resolver's, or id.gs1.org by path):
  the trace page, Vietnamese first (`?lang=en` for English); 200 genuine, recalled or on hold, 410 voided,
  404 unknown (or printed details that do not match the stamp); each such check is counted.
- the same with `Accept: application/linkset+json` (or `?linkType=linkset`): the RFC 9264 linkset
  (`gs1:pip` the page, `gs1:epcis` the events); `?linkType=gs1:epcis` redirects to the events.
- `GET /tem/{code}` (any host): a pre-printed roll's opaque code, the same page, verdicts, counts and linkset.
- `GET /events?epc=…`: the stamp's events as an EPCISDocument.
- A malformed Digital Link or an unknown query parameter: 400 with the reason, never a stack trace.

About 410 lines in one module: the routes, their 400 answers and the fast path past FastAPI's middleware must
stay the same answers, so they are read together.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import io
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Engine, text as sql_text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from central import db, report as reporting, trace as tracing
from central.texts import TEXTS, text
from contracts import digital_link, epcis
from contracts.errors import InvalidLink

log = logging.getLogger(__name__)

LINKSET = "application/linkset+json"
EPCIS_JSON = "application/ld+json"
PROBLEM = "application/problem+json"
GS1_VOC = "https://gs1.org/voc/"
PAGE_QUERY = frozenset({"17", "11", "lang", "linkType"})
OPAQUE_QUERY = frozenset({"lang", "linkType"})  # an opaque code carries no GS1 data attributes
LINK_TYPES = {"gs1:pip", "gs1:epcis", "linkset", "all"}


@dataclass(frozen=True)
class WebSettings:
    public_url: str = "http://127.0.0.1:8080"   # where the links of a linkset point
    copy_threshold: int = 50                     # checks after which the page warns of a copied stamp
    copy_places: int = 10                        # or distinct client networks
    scan_secret: bytes = b"central-scan-key"     # keys the hash of a client's network (set CENTRAL_SCAN_SECRET)
    display_offset: str = "+07:00"               # the zone of times the stations did not stamp (scans)
    context_ttl_s: float = 5.0                   # a batch's product, producer, status and diary kept this long
    report_token: str | None = None              # the report page's password (user "report"); None: no page
    scan_flush_s: float = 0.1                    # consumer checks written together this often (PostgreSQL) …
    scan_flush_rows: int = 500                   # … or at this many pending


class BadRequest(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def create_app(engine: Engine, settings: WebSettings = WebSettings(), *,
               clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> FastPath:
    postgres = (tracing.PostgresChecks(engine, flush_s=settings.scan_flush_s, flush_rows=settings.scan_flush_rows)
                if engine.dialect.name == "postgresql" else None)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if postgres is not None:
            await postgres.close()

    app = FastAPI(title="Truy xuất nguồn gốc — central", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.checks = postgres
    templates = Environment(loader=PackageLoader("central", "templates"),
                            autoescape=select_autoescape(["html"]), trim_blocks=False)
    display_zone = epcis.timezone_of(settings.display_offset)
    cache = tracing.ContextCache(settings.context_ttl_s)
    public = settings.public_url.rstrip("/")

    def stamp_path(link: digital_link.StampLink | digital_link.OpaqueLink) -> str:
        if isinstance(link, digital_link.OpaqueLink):
            return f"{digital_link.OPAQUE_PATH}{quote(link.code, safe='')}"
        return f"/01/{link.gtin}/21/{digital_link.epc_uri(link.gtin, link.serial).rsplit('/21/', 1)[1]}"

    def make_helpers(lang: str) -> dict[str, Any]:
        def t(key: str, **values: object) -> str:
            return text(key, lang, **values)

        def fmt_time(moment: dt.datetime) -> str:
            # Times the stations stamped keep their own offset; what the database hands back in UTC (scans)
            # is shown in the programme's zone.
            local = moment.astimezone(display_zone) if moment.utcoffset() in (None, dt.timedelta(0)) else moment
            return local.strftime("%H:%M %d/%m/%Y") if lang == "vi" else local.strftime("%d %b %Y, %H:%M")

        def fmt_date(day: dt.date | None) -> str | None:
            if day is None:
                return None
            return day.strftime("%d/%m/%Y") if lang == "vi" else day.strftime("%d %b %Y")

        def stage_name(stage: str) -> str:
            key = f"stage.{stage}"
            return text(key, lang) if key in TEXTS else stage

        return {"t": t, "fmt_time": fmt_time, "fmt_date": fmt_date, "stage_name": stage_name, "lang": lang}

    helpers = {lang: make_helpers(lang) for lang in ("vi", "en")}

    def render(name: str, lang: str, status: int, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        body = templates.get_template(name).render(**helpers[lang], **context)
        response = HTMLResponse(body, status_code=status, headers=headers)
        response.headers["Content-Language"] = lang
        response.headers["Cache-Control"] = "no-store"  # every check is counted, and a void must show at once
        return response

    def batch_part(found: tracing.Trace, lang: str) -> Markup | None:
        """The page's product, batch and diary sections, the same for every stamp of a batch: rendered once per
        batch context (kept `context_ttl_s`), language and stamp lot / expiry / standards, then reused."""
        if found.stamp is None:
            return None
        key = (lang, found.lot, found.expiry, found.standards)
        pages = found.context.pages if found.context is not None else {}
        part = pages.get(key)
        if part is None:
            part = Markup(templates.get_template("trace_batch.html").render(
                **helpers[lang], stamp=found.stamp, product=found.product, producer=found.producer,
                batch=found.batch, stages=found.stages, expiry=found.expiry, standards=found.standards))
            pages[key] = part
        return part

    def query_of(request: Request, allowed: frozenset[str]) -> dict[str, str]:
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        keys = [k for k, _ in pairs]
        unknown = sorted({k for k in keys if k not in allowed})
        if unknown:
            raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise BadRequest(f"query parameter(s) given twice: {', '.join(repeated)}")
        return dict(pairs)

    def language(query: dict[str, str]) -> str:
        lang = query.get("lang", "vi")
        if lang not in ("vi", "en"):
            raise BadRequest(f"lang={lang!r}: the page is in vi or en")
        return lang

    def wants(request: Request, media_type: str) -> bool:
        return any(part.split(";")[0].strip().lower() == media_type
                   for part in request.headers.get("accept", "").split(","))

    def problem(status: int, title: str, detail: str) -> JSONResponse:
        return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                            status_code=status, media_type=PROBLEM)

    def linkset(link: digital_link.StampLink | digital_link.OpaqueLink, epc: str) -> dict[str, Any]:
        page = public + stamp_path(link)
        return {"linkset": [{
            "anchor": epc,
            f"{GS1_VOC}pip": [
                {"href": page, "type": "text/html", "hreflang": ["vi"], "title": "Truy xuất nguồn gốc"},
                {"href": f"{page}?lang=en", "type": "text/html", "hreflang": ["en"], "title": "Traceability"},
            ],
            f"{GS1_VOC}epcis": [{"href": f"{public}/events?{urlencode({'epc': epc})}", "type": EPCIS_JSON,
                                 "title": "EPCIS events"}],
            f"{GS1_VOC}defaultLink": [{"href": page, "type": "text/html"}],
        }]}

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> Response:
        if wants(request, LINKSET) or wants(request, "application/json") or request.url.path == "/events":
            return problem(400, "Bad request", exc.reason)
        lang = "en" if "lang=en" in request.url.query else "vi"
        return render("error.html", lang, 400, reason=exc.reason)

    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(psycopg.Error)
    async def _database_down(request: Request, exc: Exception) -> Response:
        log.error("database error on %s: %s", request.url.path, " ".join(str(exc).split())[:300])
        return problem(503, "Service unavailable", "the database is not answering; try again shortly")

    def report_of(request: Request) -> tuple[Any, str, dict[str, str]]:
        if not settings.report_token:
            raise HTTPException(404)
        given = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"report:{settings.report_token}".encode()).decode()
        if not secrets.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, headers={"WWW-Authenticate": 'Basic realm="central report", charset="UTF-8"'})
        query = query_of(request, frozenset({"from", "to", "lang"}))
        lang = language(query)
        today = clock().astimezone(display_zone).date()
        try:
            start = dt.date.fromisoformat(query.get("from") or f"{today.year}-01-01")
            end = dt.date.fromisoformat(query.get("to") or today.isoformat())
        except ValueError as exc:
            raise BadRequest(f"from/to: {exc} (YYYY-MM-DD)") from None
        if end < start:
            raise BadRequest(f"the period ends ({end}) before it starts ({start})")
        built = reporting.build(engine, start, end, offset=settings.display_offset,
                                copy_threshold=settings.copy_threshold, copy_places=settings.copy_places)
        return built, lang, {"from": start.isoformat(), "to": end.isoformat()}

    @app.get("/report")
    def report_page(request: Request) -> Response:
        built, lang, period = report_of(request)
        other = {**period, **({"lang": "en"} if lang == "vi" else {})}
        voided = built.voided
        return render("report.html", lang, 200, r=built, voided=voided.most_common(), voided_total=sum(voided.values()),
                      producers_active=len({row.producer or row.gtin for row in built.rows if row.activated}),
                      groups=[("report.by_producer", built.by(0)), ("report.by_product", built.by(1)),
                              ("report.by_batch", built.by(2)), ("report.by_station", built.by(3))],
                      switch_href=f"/report?{urlencode(other)}", csv_href=f"/report.csv?{urlencode(period)}")

    @app.get("/report.csv")
    def report_csv(request: Request) -> Response:
        built, _, period = report_of(request)
        out = io.StringIO()
        reporting.write_csv(built, out)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="truyxuat-{period["from"]}-{period["to"]}.csv"'})

    @app.get("/robots.txt")
    def robots() -> Response:
        # Trace pages are per stamp and counted per check: no crawler should walk them.
        return Response("User-agent: *\nDisallow: /\n", media_type="text/plain")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with engine.connect() as conn:
            conn.execute(sql_text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/events")
    def events_endpoint(request: Request) -> Response:
        query = query_of(request, frozenset({"epc"}))
        epc = query.get("epc")
        if not epc:
            raise BadRequest("epc is required: /events?epc=https://id.gs1.org/01/{GTIN}/21/{serial}")
        path = urlsplit(epc).path
        if path.startswith(digital_link.OPAQUE_PATH) and "://" in epc:
            # A pre-printed opaque code, under whatever resolver host: the events of the EPC its station sent.
            try:
                code = digital_link.opaque_code(path[len(digital_link.OPAQUE_PATH):])
            except InvalidLink as exc:
                raise BadRequest(f"epc: {exc}") from None
            stored = tracing.epc_of_code(engine, code)
            found = tracing.events_of(engine, stored) if stored is not None else []
            if not found:
                return problem(404, "Not found", f"no events for the code {code}")
            return JSONResponse(epcis.document(found, clock()), media_type=EPCIS_JSON)
        try:
            link = digital_link.parse(epc)
        except InvalidLink as exc:
            raise BadRequest(f"epc: {exc}") from None
        found = tracing.events_of(engine, link.epc)
        if not found:
            return problem(404, "Not found", f"no events for {link.epc}")
        return JSONResponse(epcis.document(found, clock()), media_type=EPCIS_JSON)

    def link_type_of(query: dict[str, str]) -> str | None:
        link_type = query.get("linkType")
        if link_type is not None and link_type not in LINK_TYPES:
            raise BadRequest(f"linkType={link_type!r}: this resolver has {', '.join(sorted(LINK_TYPES))}")
        return link_type

    # The resolver's routes are plain Starlette routes with async endpoints: no FastAPI dependency solving, no
    # thread hop; on PostgreSQL their database work is PostgresChecks' (asyncio psycopg), on SQLite (the demo)
    # the synchronous path in a worker thread.
    async def resolve(request: Request) -> Response:
        query = query_of(request, PAGE_QUERY)
        lang = language(query)
        link_type = link_type_of(query)
        data = urlencode({k: v for k, v in query.items() if k in digital_link.DATA_ATTRIBUTES})
        uri = f"https://resolver{request.url.path}" + (f"?{data}" if data else "")
        try:
            link = digital_link.parse(uri)
        except InvalidLink as exc:
            raise BadRequest(str(exc)) from None
        return await answer(request, link, query, lang, link_type)

    async def resolve_opaque(request: Request) -> Response:
        """A pre-printed roll's opaque code, `/tem/{code}` on any host: the same page, verdicts and counts."""
        query = query_of(request, OPAQUE_QUERY)
        lang = language(query)
        link_type = link_type_of(query)
        raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        segment = raw[raw.find(digital_link.OPAQUE_PATH) + len(digital_link.OPAQUE_PATH):]
        try:
            link = digital_link.OpaqueLink(digital_link.opaque_code(segment), public)
        except InvalidLink as exc:
            raise BadRequest(str(exc)) from None
        return await answer(request, link, query, lang, link_type)

    def lookup_sync(link: digital_link.StampLink | digital_link.OpaqueLink) -> tracing.Trace:
        with engine.connect() as conn:
            return tracing.lookup(conn, link, cache)

    async def answer(request: Request, link: digital_link.StampLink | digital_link.OpaqueLink,
                     query: dict[str, str], lang: str, link_type: str | None) -> Response:
        if link_type == "gs1:epcis":
            return RedirectResponse(f"/events?{urlencode({'epc': link.epc})}", status_code=307)
        if link_type in ("linkset", "all") or wants(request, LINKSET):
            found = await (postgres.lookup(link, cache) if postgres else run_in_threadpool(lookup_sync, link))
            if found.verdict == "unknown":
                return problem(404, "Not found", f"{link.epc} was not issued by this programme")
            return JSONResponse(linkset(link, found.epc), status_code=found.status_code, media_type=LINKSET)
        client = tracing.client_key(request.client.host if request.client else None, settings.scan_secret)
        record = request.method == "GET"
        if postgres is not None:
            found = await postgres.check(link, client=client, now=clock(), record=record, cache=cache)
        else:
            found = await run_in_threadpool(lambda: tracing.check(engine, link, client=client, now=clock(),
                                                                  record=record, cache=cache))
        scans = found.scans
        page_path = request.url.path if isinstance(link, digital_link.StampLink) else stamp_path(link)
        other = "en" if lang == "vi" else "vi"
        switch_query = {k: v for k, v in query.items() if k != "lang"}
        if other == "en":
            switch_query["lang"] = "en"
        switch = page_path + (f"?{urlencode(switch_query)}" if switch_query else "")
        headers = {}
        if found.verdict != "unknown":
            headers["Link"] = f'<{public}{stamp_path(link)}?linkType=linkset>; rel="linkset"; type="{LINKSET}"'
        return render(
            "trace.html", lang, found.status_code, headers, batch_html=batch_part(found, lang),
            verdict=found.verdict, mismatch=found.mismatch, stamp=found.stamp, product=found.product,
            producer=found.producer, batch=found.batch, stages=found.stages, scans=scans, epc=found.epc,
            expiry=found.expiry, standards=found.standards, activated=tracing.activated_local(found),
            voided=tracing.voided_local(found),
            copied=scans is not None and scans.suspicious(settings.copy_threshold, settings.copy_places),
            switch_href=switch, other_lang=other,
            linkset_href=f"{stamp_path(link)}?linkType=linkset" if found.verdict != "unknown" else None,
        )

    app.add_route("/01/{rest:path}", resolve, methods=["GET", "HEAD"])
    app.add_route(digital_link.OPAQUE_PATH + "{rest:path}", resolve_opaque, methods=["GET", "HEAD"])
    return FastPath(app, (("/01/", resolve), (digital_link.OPAQUE_PATH, resolve_opaque)), _bad_request,
                    _database_down)


class FastPath:
    """The resolver's routes answered at the ASGI entry, past FastAPI's middleware stack (server errors, body
    limit, exception telemetry, exception handlers, the exit stack, the router: a sixth of a trace page's CPU,
    measured), with the same answers for a bad request and a database that is down; every other request, and
    the lifespan, go to the FastAPI app (which has the same routes too). Attributes are the app's."""

    def __init__(self, app: FastAPI, routes: Any, bad_request: Any, database_down: Any) -> None:
        self.app, self._routes, self._bad_request, self._database_down = app, routes, bad_request, database_down

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path = scope["path"]
            for prefix, endpoint in self._routes:
                if path.startswith(prefix):
                    request = Request(scope, receive)
                    try:
                        response = await endpoint(request)
                    except BadRequest as exc:
                        response = await self._bad_request(request, exc)
                    except (SQLAlchemyError, psycopg.Error) as exc:
                        response = await self._database_down(request, exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def app_from_environment() -> FastPath:
    """The app uvicorn's workers build (`central serve --workers N`): settings come through the environment."""
    engine = db.make_engine(os.environ["CENTRAL_DB"])
    settings = WebSettings(
        public_url=os.environ.get("CENTRAL_PUBLIC_URL", WebSettings.public_url),
        copy_threshold=int(os.environ.get("CENTRAL_COPY_THRESHOLD", WebSettings.copy_threshold)),
        scan_secret=os.environ.get("CENTRAL_SCAN_SECRET", "").encode() or WebSettings.scan_secret,
        report_token=os.environ.get("CENTRAL_REPORT_TOKEN") or None,
    )
    return create_app(engine, settings)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    engine = db.make_engine(args.db)
    if not args.no_migrate:
        db.upgrade(engine)
    engine.dispose()
    os.environ["CENTRAL_DB"] = args.db
    os.environ["CENTRAL_PUBLIC_URL"] = args.public_url or f"http://{args.host}:{args.port}"
    os.environ["CENTRAL_COPY_THRESHOLD"] = str(args.copy_threshold)
    uvicorn.run("central.web:app_from_environment", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="info", access_log=False, proxy_headers=True)
    return 0
