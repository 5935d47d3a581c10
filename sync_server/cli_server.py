"""Server-side commands: `init`, `server`, `db upgrade` (and later `worker`, `devices`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from sync_server.db import make_engine, session_scope
from sync_server.logs import LogFormat, uvicorn_log_config
from sync_server.settings import Settings

__all__ = ["db_app", "fail", "init", "open_engine", "server", "settings_for"]

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default $DOORCHECK_DB_URL or ./doorcheck.db)."),
]
log = logging.getLogger("doorcheck.server")
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def settings_for(db: str | None, data_dir: Path | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if db:
        overrides["db_url"] = db
    if data_dir:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)  # type: ignore[arg-type]


def fail(message: str) -> typer.Exit:
    typer.echo(f"doorcheck: {message}", err=True)
    return typer.Exit(1)


def _upgrade(settings: Settings) -> None:
    from sync_server.migrate import upgrade

    engine = make_engine(settings.db_url)
    try:
        upgrade(engine, secret=settings.secret())
    except OperationalError as exc:
        raise fail(
            f"cannot reach the database at {_redacted(settings.db_url)}: "
            f"{str(exc.orig).strip().splitlines()[0]}"
        ) from exc
    finally:
        engine.dispose()


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured URL"


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Apply the schema migrations (Alembic) to the database."""
    settings = settings_for(db)
    _upgrade(settings)
    typer.echo("database is up to date")


def init(
    org: Annotated[str, typer.Option("--org", help="Organization name.")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an organization and its admin API key (printed once, never again)."""
    from sync_server.services.keys import create_organization

    name = org.strip()
    if not name or len(name) > 200:
        raise fail("--org must be 1 to 200 characters")
    settings = settings_for(db)
    _upgrade(settings)
    engine = make_engine(settings.db_url)
    try:
        with session_scope(engine) as session:
            organization, key = create_organization(session, name=name, secret=settings.secret())
    except SQLAlchemyError as exc:
        raise fail(f"could not create the organization: {exc.__class__.__name__}") from exc
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"organization_id": organization.id, "api_key": key}))
    else:
        typer.echo(f"organization: {organization.id}")
        typer.echo(f"admin API key (shown once): {key}")


def configure_logging(fmt: str | None = None) -> None:
    """Our own INFO lines on stderr, plain or JSON (`fmt`, else `DOORCHECK_LOG_FORMAT`); httpx's
    line per request (every webhook attempt, hundreds a second under load) only when it is a
    warning: the delivery log in the database has them."""
    from sync_server.logs import configure

    configure(fmt or os.environ.get("DOORCHECK_LOG_FORMAT") or "plain")


def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    db: DbOption = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log one line per request (with its id).")
    ] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option("--log-format", help="plain text, or one JSON object per line."),
    ] = LogFormat.PLAIN,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            envvar="DOORCHECK_FORWARDED_ALLOW_IPS",
            help="Proxies whose X-Forwarded-For / -Proto are trusted (comma-separated addresses, "
            "or * for any). Default: none, the client is the connection's address.",
        ),
    ] = "",
) -> None:
    """Run the sync server (migrations are applied first)."""
    import uvicorn

    settings = settings_for(db)
    _upgrade(settings)
    # every worker process (and the webhook worker) reads its settings from the environment
    os.environ["DOORCHECK_DB_URL"] = settings.db_url
    os.environ["DOORCHECK_LOG_FORMAT"] = log_format.value
    os.environ["DOORCHECK_ACCESS_LOG"] = "true" if access_log else "false"
    metrics_dir = _metrics_dir()
    configure_logging(log_format.value)
    dispatcher = None
    if settings.webhook_embedded:
        # webhooks are delivered by one child `doorcheck worker`, not by threads of the API
        # processes: its own interpreter lock, so delivering does not slow the API down
        os.environ["DOORCHECK_WEBHOOK_EMBEDDED"] = "false"
        dispatcher = ChildWorker(settings.db_url)
        dispatcher.start()
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "doorcheck server listening on http://%s:%d (%d worker%s)",
        shown,
        port,
        workers,
        "" if workers == 1 else "s",
        extra={"url": f"http://{shown}:{port}"},
    )
    try:
        uvicorn.run(
            "sync_server.asgi:app",
            host=host,
            port=port,
            workers=workers,
            log_config=uvicorn_log_config(log_format),
            log_level="warning",
            access_log=False,
            # uvicorn trusts 127.0.0.1 by default: a client on the same host could pose as any
            # address (and reset the enrolment rate limit per spoofed address)
            proxy_headers=bool(forwarded_allow_ips.strip()),
            forwarded_allow_ips=forwarded_allow_ips.strip() or None,
        )
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_dir() -> Path | None:
    """Where every process of this server (its workers, the webhook worker) writes its metrics
    for `/metrics` to add up (`PROMETHEUS_MULTIPROC_DIR`): a fresh folder removed at exit,
    unless the operator gave one."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    folder = Path(tempfile.mkdtemp(prefix="doorcheck-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    if "prometheus_client" in sys.modules:  # too late for this process: its values stay here
        log.warning("metrics of the first worker may be missing (prometheus_client loaded)")
    return folder


class ChildWorker:
    """A `doorcheck worker` process beside the server, restarted if it dies; it exits by itself
    if the server goes away (`DOORCHECK_WORKER_PARENT`)."""

    RESTART_AFTER_S = 1.0

    def __init__(self, db_url: str) -> None:
        self.command = [
            sys.executable,
            "-c",
            "import typer; from sync_server.cli_worker import worker; typer.run(worker)",
            "--db",
            db_url,
        ]
        self.env = {**os.environ, "DOORCHECK_WORKER_PARENT": str(os.getpid())}
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._watch, name="webhook-worker", daemon=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, env=self.env)
        self.watcher.start()

    def _watch(self) -> None:
        while not self.stopping.is_set():
            proc = self.proc
            if proc is not None and proc.poll() is not None and not self.stopping.is_set():
                log.warning("the webhook worker exited (%s); restarting it", proc.returncode)
                self.stopping.wait(self.RESTART_AFTER_S)
                if not self.stopping.is_set():
                    self.proc = subprocess.Popen(self.command, env=self.env)
            self.stopping.wait(0.5)

    def stop(self) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_engine(db: str | None, *, migrate: bool) -> Engine:
    """An engine on `--db` (migrated first when `migrate`); one clear line when unreachable."""
    from sync_server.migrate import upgrade

    url = settings_for(db).db_url
    if url.startswith("sqlite:///") and not migrate and not Path(url[10:]).exists():
        raise fail(f"no database at {url[10:]}")
    engine = make_engine(url)
    if migrate:
        try:
            upgrade(engine)
        except OperationalError as exc:
            engine.dispose()
            raise fail(f"cannot reach the database: {str(exc.orig).strip()[:200]}") from exc
    return engine
