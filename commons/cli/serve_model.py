"""`commons serve-model REPO[@REV]`: an OpenAI-compatible API for one model of the hub."""

from __future__ import annotations

import os
import time

import typer

from commons.config import Settings
from commons.services import build_services
from commons.serving.engines import ENGINES, EngineOptions, choose, load_engine


def serve_model(
    spec: str = typer.Argument(..., metavar="REPO[@REV]", help="Model repo (or LoRA adapter repo) and revision."),
    engine: str = typer.Option("auto", help=f"Inference engine: {', '.join(ENGINES)}."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8100, help="Port to listen on."),
    dtype: str = typer.Option("float32", help="transformers engine: float32 or bfloat16."),
    precision: str = typer.Option("int4", help="onnx engine: int4 (block-wise, 32) or fp32."),
    gguf_type: str = typer.Option("", help="llamacpp engine: which of the repo's GGUF files (e.g. Q4_K_M), or the "
                                           "type a checkpoint is exported to (F16 by default, Q8_0, Q4_0)."),
    context: int = typer.Option(2048, min=16, help="llamacpp engine: tokens of context per request."),
    threads: int = typer.Option(0, min=0, help="llamacpp engine: decoding threads (0: every core)."),
    max_batch: int = typer.Option(8, min=1, help="Most requests decoded together."),
    anonymous: bool = typer.Option(False, help="Let requests without a token in (public repos only)."),
) -> None:
    """Serve a hub model through an OpenAI-compatible API (/v1/chat/completions, /v1/completions)."""
    import uvicorn

    from commons.hub.ids import RepoType
    from commons.serving import registry
    from commons.serving.access import ModelAccess
    from commons.serving.batcher import Batcher
    from commons.serving.models import resolve_model
    from commons.serving.openai_api import Served, create_app

    settings = Settings()
    services = build_services(settings)
    files = resolve_model(services, spec)
    chosen = choose(engine, files.model_dir, files.adapter_dir)
    typer.echo(f"loading {files.repo_id}@{files.commit[:12]} with the {chosen} engine"
               + (f" (adapter on {files.base})" if files.base else ""), err=True)
    loaded = load_engine(chosen, files.model_dir, files.adapter_dir, settings.home / "serving",
                         EngineOptions(dtype=dtype, precision=precision, gguf_type=gguf_type or None,
                                       context=context, threads=threads or None, max_batch=max_batch))
    batcher = Batcher(loaded)
    served = Served(model=files.repo_id, repo_id=files.repo_id, commit=files.commit,
                    owner=files.repo_id.split("/")[0], created=int(time.time()))
    entry = registry.ServerEntry(repo_id=files.repo_id, commit=files.commit, model=served.model,
                                 url=f"http://{host}:{port}", engine=loaded.name, pid=os.getpid(),
                                 started_at=registry.now())

    def announce() -> None:
        registry.register(settings.home, entry)
        typer.echo(f"serving {served.model} on http://{host}:{port}/v1", err=True)

    app = create_app(loaded, batcher, served, ModelAccess(services, RepoType.MODEL, files.repo_id, anonymous),
                     on_ready=announce)

    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=30)
    finally:
        registry.unregister(registry.servers_dir(settings.home) / f"{entry.pid}.json")
        batcher.close()
        services.close()
