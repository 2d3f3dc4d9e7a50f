"""`commons serve`: the hub (uvicorn) and the zero-copy blob server, in one process."""

from __future__ import annotations

import typer
import uvicorn

from commons.api.hf.lfs import record_object
from commons.app import create_app
from commons.config import Settings
from commons.db import migrate
from commons.hub.maintenance import reindex_all, sweep_temp
from commons.jobs.worker import EmbeddedWorker
from commons.services import build_services


def serve(
    host: str | None = typer.Option(None, help="Address to listen on (COMMONS_HOST)."),
    port: int | None = typer.Option(None, help="Port (COMMONS_PORT)."),
) -> None:
    """Run the hub: HF-compatible API, git over HTTP, blob server."""
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.sqlalchemy_url)
    services = build_services(settings)
    # Only this process writes under home, so everything in temp space is a crash leftover.
    sweep_temp(settings.tmp_dir, settings.blobs_dir / "staging")
    with services.session() as session:
        reindex_all(session, services.storage)
    app = create_app(settings, services)
    blob_server = None
    if settings.effective_blob_port is not None:
        from commons.blobserver import BlobServer

        blob_server = BlobServer(
            services.blobs, services.signer, settings.host, settings.effective_blob_port,
            on_stored=lambda sha, size: record_object(services, sha, size), max_size=settings.max_file_size,
        )
        blob_server.start()
        app.state.blob_port = blob_server.port
    worker = EmbeddedWorker(services) if settings.jobs_embedded else None
    if worker is not None:
        worker.start()
    typer.echo(f"Commons hub on http://{settings.host}:{settings.port}  (data: {settings.home})", err=True)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                    timeout_keep_alive=30, access_log=settings.log_level == "debug")
    finally:
        if worker is not None:
            worker.stop()
        if blob_server is not None:
            blob_server.stop()
