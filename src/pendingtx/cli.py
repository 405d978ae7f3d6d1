"""The `pendingtx` command line; each command only wires options to services or to the client SDK.

Server commands: serve, worker, db, apps, demo. The client commands (submit, status, transactions
...) are pendingtx-client's (`pendingtx_client.cli`), included here as they are; on a machine with
only the client they are the `pendingtx-client` command. The server's modules are imported inside
the server commands, so that `--help` and shell completion stay fast.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import signal
import sys
from typing import TYPE_CHECKING

import click

from pendingtx.config import Settings, SettingsError, mask_credentials, setting_variables, settings_markdown
from pendingtx.domain.credentials import PRODUCT
from pendingtx.domain.networks import Network, parse_networks
from pendingtx_client.cli.commands import COMMANDS as CLIENT_COMMANDS

if TYPE_CHECKING:
    from pendingtx.bootstrap import Runtime

database_option = click.option(
    "--database-url",
    envvar="PENDINGTX_DATABASE_URL",
    default=None,
    help="Database URL (default sqlite:///./pendingtx.db; env PENDINGTX_DATABASE_URL).",
)


class _SettingsRefused(click.ClickException):
    """A setting that cannot be used: one line on standard error, exit status 2 (a usage error)."""

    exit_code = 2


def _settings(
    database_url: str | None,
    *,
    sandbox: bool | None = None,
    processes: int | None = None,
    http_server: str | None = None,
) -> Settings:
    try:
        return Settings.from_env(
            database_url=database_url, sandbox=sandbox, processes=processes, http_server=http_server
        )
    except SettingsError as exc:
        raise _SettingsRefused(str(exc)) from None


def _runtime(settings: Settings) -> Runtime:
    """The runtime, or a one-line error (not a traceback) when the database cannot be opened."""
    import sqlalchemy as sa

    from pendingtx.bootstrap import build_runtime

    try:
        return build_runtime(settings)
    except SettingsError as exc:  # a database of the other mode (sandbox or production)
        raise _SettingsRefused(str(exc)) from None
    except (sa.exc.ArgumentError, sa.exc.OperationalError) as exc:
        reason = mask_credentials(str(getattr(exc, "orig", None) or exc))
        shown = mask_credentials(settings.database_url)
        raise click.ClickException(f"cannot use the database {shown!r}: {reason}") from None


@click.group()
@click.version_option(package_name="pendingtx")
def main() -> None:
    """pendingtx: asynchronous pending-transaction ingestion with job-status tracking."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@database_option
@click.option("--no-worker", is_flag=True, help="Serve the API only; run `pendingtx worker` elsewhere.")
@click.option(
    "--sandbox",
    is_flag=True,
    default=None,
    help="Sandbox mode for client developers (env PENDINGTX_SANDBOX; needs a fresh or sandbox database).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=0, max=256),
    default=None,
    help="API processes sharing the port, the worker in one (env PENDINGTX_PROCESSES; default 0: one "
    "per core, at most 8; 1: a single process).",
)
@click.option(
    "--http-server",
    type=click.Choice(["uvicorn", "granian"]),
    default=None,
    help="The HTTP server (env PENDINGTX_HTTP_SERVER; default uvicorn; granian needs the `granian` extra).",
)
def serve(
    *,
    host: str,
    port: int,
    database_url: str | None,
    no_worker: bool,
    sandbox: bool | None,
    processes: int | None,
    http_server: str | None,
) -> None:
    """Serve the API, with a worker in one of its processes (migrations are applied first).

    Logs are JSON lines on standard error, one per request among them. On SIGTERM or SIGINT every
    process stops accepting, answers the requests in flight, the worker hands back a job in
    progress at its next chunk boundary, and the command exits with status 0.
    """
    from pendingtx.api.server import ServerFailed
    from pendingtx.bootstrap import serve as serve_runtime
    from pendingtx.observability.logs import AccessLog, configure_logging
    from pendingtx.supervisor import process_count, serve_processes

    settings = _settings(database_url, sandbox=sandbox, processes=processes, http_server=http_server)
    if settings.http_server == "granian" and importlib.util.find_spec("granian") is None:
        raise _SettingsRefused(
            "PENDINGTX_HTTP_SERVER: granian is not installed; pip install 'pendingtx[granian]'"
        )
    try:
        log_sink = configure_logging(settings.log_level)  # JSON lines on standard error
    except ValueError as exc:
        raise click.UsageError(f"invalid setting: {exc}") from None
    count = process_count(settings)
    if settings.sandbox and count > 1:
        # The sandbox's clock, faults and reset are one process's state.
        level = logging.WARNING if settings.processes > 1 else logging.INFO
        logging.getLogger("pendingtx").log(level, "sandbox mode serves in one process, not %d", count)
        count = 1
    runtime = _runtime(settings)
    if count > 1:
        runtime.close()  # it has migrated and checked the database; each process makes its own
        try:
            status = serve_processes(settings, host=host, port=port, count=count, run_worker=not no_worker)
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        sys.exit(status)
    try:
        serve_runtime(
            runtime, host=host, port=port, run_worker=not no_worker, access_log=AccessLog(sink=log_sink)
        )
    except ServerFailed as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()


@main.command()
@database_option
@click.option(
    "--concurrency", default=1, show_default=True, type=click.IntRange(min=1), help="Worker threads."
)
def worker(database_url: str | None, concurrency: int) -> None:
    """Process jobs without serving HTTP (beside `pendingtx serve --no-worker`).

    On SIGTERM or SIGINT it stops claiming, hands back each job in progress at its next chunk
    boundary (another worker resumes it at once), and exits with status 0.
    """
    from pendingtx.observability.logs import configure_logging

    settings = _settings(database_url)
    try:
        configure_logging(settings.log_level)  # JSON lines on standard error
    except ValueError as exc:
        raise click.UsageError(f"invalid setting: {exc}") from None
    runtime = _runtime(settings)
    if settings.sandbox:
        from pendingtx.bootstrap import SANDBOX_BANNER

        logging.getLogger("pendingtx").warning(SANDBOX_BANNER)
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    # Blocked before any thread starts, so that only the main thread's sigwait receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    pool = runtime.worker_pool(concurrency)
    try:
        pool.start()
        received = signal.sigwait(stop_signals)
        logging.getLogger("pendingtx.worker").info("%s received; stopping", signal.Signals(received).name)
        pool.stop(settings.shutdown_timeout_seconds)
    finally:
        runtime.close()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the table of every setting, its default and meaning.")
def settings_command(markdown: bool) -> None:
    """Print every setting's environment variable and the value it has here (database passwords masked).

    The environment is checked as `serve` checks it: an unknown PENDINGTX_* variable is an error.
    """
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    settings = _settings(None)
    for name in setting_variables():
        value = getattr(settings, name.removeprefix("PENDINGTX_").lower())
        if name == "PENDINGTX_WEBHOOK_KEY" and value:
            value = "***"  # a key, never printed
        click.echo(f"{name}={mask_credentials(str(value))}")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@database_option
def db_upgrade(database_url: str | None) -> None:
    """Apply every pending migration."""
    _runtime(_settings(database_url)).close()
    click.echo("database is up to date")


@main.group()
def apps() -> None:
    """Register and manage client applications."""


def _networks(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return parse_networks(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


allow_ip_option = click.option(
    "--allow-ip",
    "allowed",
    multiple=True,
    metavar="CIDR",
    callback=_networks,
    help="Accept /v1 calls only from this IPv4 or IPv6 network or address (repeatable).",
)


def _allowed_text(networks: tuple[Network, ...] | None) -> str:
    return ", ".join(str(n) for n in networks) if networks else "any address"


@apps.command("create")
@click.option("--name", required=True, help="The application's name.")
@click.option("--org", default="default", show_default=True, help="Organization (created on first use).")
@click.option("--product", "products", multiple=True, help=f"Entitled product (default {PRODUCT}).")
@allow_ip_option
@click.option("--json", "as_json", is_flag=True, help="Print exactly {appKey, appSecret, organization}.")
@database_option
def apps_create(
    *,
    name: str,
    org: str,
    products: tuple[str, ...],
    allowed: tuple[Network, ...],
    as_json: bool,
    database_url: str | None,
) -> None:
    """Register an application and print its AppKey and AppSecret (shown only this once).

    Without --allow-ip the application may call from any address.
    """
    from pendingtx.services import credentials

    runtime = _runtime(_settings(database_url))
    try:
        new = credentials.create_app(
            runtime.uow,
            name=name,
            organization=org,
            products=products or (PRODUCT,),
            clock=runtime.clock,
            allowed_networks=allowed,
        )
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps({"appKey": new.app_key, "appSecret": new.app_secret, "organization": org}))
        return
    click.echo(f"Application:  {new.name} (organization {org}; products {', '.join(new.products)})")
    click.echo(f"Allowed from: {_allowed_text(new.allowed_networks)}")
    click.echo(f"AppKey:       {new.app_key}")
    click.echo(f"AppSecret:    {new.app_secret}")
    click.echo("Keep the secret now: it is stored only as a hash and cannot be shown again.")


@apps.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@database_option
def apps_list(as_json: bool, database_url: str | None) -> None:
    """List registered applications (never their secrets)."""
    from pendingtx.services import credentials

    runtime = _runtime(_settings(database_url))
    try:
        found = credentials.list_apps(runtime.uow)
    finally:
        runtime.close()
    rows = [
        {
            "appKey": a.app_key,
            "name": a.name,
            "organization": a.org_name,
            "products": list(a.products),
            "disabled": a.disabled,
            # Empty: any address.
            "allowedIps": [str(n) for n in a.allowed_networks or ()],
        }
        for a in found
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        state = "disabled" if r["disabled"] else "enabled"
        products = ",".join(r["products"])  # type: ignore[arg-type]
        allowed = ",".join(r["allowedIps"]) or "any"  # type: ignore[arg-type]
        click.echo(f"{r['appKey']}  {r['organization']}/{r['name']}  {state}  {products}  ips:{allowed}")


@apps.command("update")
@click.argument("app_key")
@allow_ip_option
@click.option("--clear-allow-ips", is_flag=True, help="Remove the allow-list: accept calls from any address.")
@database_option
def apps_update(
    app_key: str, allowed: tuple[Network, ...], clear_allow_ips: bool, database_url: str | None
) -> None:
    """Change an application: --allow-ip replaces its IP allow-list with the networks given.

    The change applies at once, to tokens already issued too.
    """
    from pendingtx.services import credentials

    if bool(allowed) == clear_allow_ips:
        raise click.UsageError("give either --allow-ip (one or more) or --clear-allow-ips")
    runtime = _runtime(_settings(database_url))
    try:
        found = credentials.set_allowed_networks(runtime.uow, app_key, allowed)
    finally:
        runtime.close()
    if not found:
        click.echo(f"no application with AppKey {app_key}", err=True)
        sys.exit(1)
    click.echo(f"updated {app_key}: allowed from {_allowed_text(allowed)}")


@apps.command("disable")
@click.argument("app_key")
@database_option
def apps_disable(app_key: str, database_url: str | None) -> None:
    """Disable an application: its tokens stop working at once."""
    from pendingtx.services import credentials

    runtime = _runtime(_settings(database_url))
    try:
        found = credentials.set_disabled(runtime.uow, app_key, disabled=True)
    finally:
        runtime.close()
    if not found:
        click.echo(f"no application with AppKey {app_key}", err=True)
        sys.exit(1)
    click.echo(f"disabled {app_key}")


@main.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--database-url",
    default=None,
    help="A fresh or sandbox database to keep (default: a temporary one, deleted on exit).",
)
@click.option(
    "--seed",
    default=None,
    help="Seed of the job keys (default PENDINGTX_SANDBOX_SEED, else 'pendingtx-sandbox').",
)
def sandbox_command(host: str, port: int, database_url: str | None, seed: str | None) -> None:
    """Start a sandbox for testing an integration: a fresh database, one demo application whose
    credentials are printed, and the server in sandbox mode (contract 7.6) until SIGTERM or SIGINT."""
    import tempfile

    from pendingtx.bootstrap import serve as serve_runtime
    from pendingtx.observability.logs import AccessLog, configure_logging
    from pendingtx.services import credentials

    with tempfile.TemporaryDirectory(prefix="pendingtx-sandbox-") as directory:
        url = database_url or f"sqlite:///{directory}/sandbox.db"
        settings = _settings(url, sandbox=True)
        settings = settings.replace(sandbox_seed=seed or settings.sandbox_seed or "pendingtx-sandbox")
        try:
            log_sink = configure_logging(settings.log_level)
        except ValueError as exc:
            raise click.UsageError(f"invalid setting: {exc}") from None
        runtime = _runtime(settings)
        try:
            app = credentials.create_app(
                runtime.uow, name="demo-app", organization="sandbox", products=(PRODUCT,), clock=runtime.clock
            )
            root = f"http://{host}:{port}"
            click.echo("pendingtx sandbox: test data only" + ("" if database_url else ", deleted on exit"))
            click.echo(f"URL:        {root}")
            click.echo(f"Docs:       {root}/docs")
            click.echo(f"AppKey:     {app.app_key}")
            click.echo(f"AppSecret:  {app.app_secret}")
            click.echo(f"Seed:       {settings.sandbox_seed}")
            # The client commands and the SDK read these variables.
            variables = (
                f"PENDINGTX_URL={root} PENDINGTX_APP_KEY={app.app_key} PENDINGTX_APP_SECRET={app.app_secret}"
            )
            click.echo(f"Client:     export {variables}")
            serve_runtime(runtime, host=host, port=port, access_log=AccessLog(sink=log_sink))
        finally:
            runtime.close()


@main.command()
def demo() -> None:
    """Run the whole flow against a throw-away service and print every request and answer."""
    from pendingtx.demo import run_demo

    sys.exit(run_demo(click.echo))


# The client commands (submit, status, transactions ...) are pendingtx-client's own.
for _command in CLIENT_COMMANDS:
    main.add_command(_command)
