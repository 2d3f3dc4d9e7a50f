"""The OpenAI-compatible HTTP surface of a model server: /v1/models, /v1/chat/completions, /v1/completions.

Responses and stream chunks follow OpenAI's shapes field for field (the official `openai` client
parses them in the tests); errors are `{"error": {"message", "type", "param", "code"}}` with the
status OpenAI uses: 400 bad parameters or a prompt longer than the context, 401 no or a bad token,
403 a token that may not read the model, 404 an unknown model.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from commons.serving.access import VIEWER_HEADER, VIEWER_SIG_HEADER, AccessDenied, ModelAccess
from commons.serving.batcher import Batcher, Delta, Failed, Finished
from commons.serving.engine import AnyEngine, SamplingParams

MAX_STOPS = 4


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.type, "param": self.param,
                                       "code": self.code}}, status_code=self.status)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def plain(self) -> dict[str, str]:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields we do not use (user, metadata, ...)
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > MAX_STOPS or any(not s for s in stops):
            raise ValueError(f"stop takes up to {MAX_STOPS} non-empty strings")
        return value

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class CompletionRequest(_Sampling):
    prompt: str | list[str]

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("this server takes one prompt per request")
        return value


@dataclass
class Served:
    """What this server serves, as /v1/models and the playground show it."""

    model: str
    repo_id: str
    commit: str
    owner: str
    created: int


def _param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or None


def create_app(engine: AnyEngine, batcher: Batcher, served: Served, access: ModelAccess,
               on_ready: Callable[[], None] | None = None) -> FastAPI:
    """The app; `on_ready` runs once the server listens (it announces the server in the registry)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_ready is not None:
            on_ready()
        yield

    app = FastAPI(title=f"Commons model server: {served.model}", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = "not_found" if exc.status_code == 404 else None
        return OpenAIError(exc.status_code, str(exc.detail), None, code).response()

    @app.exception_handler(OpenAIError)
    async def _openai_error(request: Request, exc: OpenAIError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = _param(tuple(first.get("loc", ())))
        message = f"Invalid value for '{param}': {first.get('msg')}" if param else str(first.get("msg"))
        return OpenAIError(400, message, param, "invalid_value").response()

    async def authorised(request: Request) -> str:
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
        try:
            return await run_in_threadpool(access.check, bearer, request.headers.get(VIEWER_HEADER),
                                           request.headers.get(VIEWER_SIG_HEADER))
        except AccessDenied as exc:
            raise OpenAIError(exc.status, str(exc), None, exc.code, exc.type) from None


    def model_card() -> dict[str, Any]:
        return {"id": served.model, "object": "model", "created": served.created, "owned_by": served.owner}

    def check_model(name: str) -> None:
        if name != served.model:
            raise OpenAIError(404, f"The model '{name}' does not exist: this server serves '{served.model}'.",
                              "model", "model_not_found")

    def sampling(body: _Sampling, prompt_len: int, max_tokens: int | None, default: int) -> SamplingParams:
        room = engine.context_length - prompt_len
        wanted = max_tokens if max_tokens is not None else min(default, room)
        if wanted > room or room <= 0:
            raise OpenAIError(400, f"This model's maximum context length is {engine.context_length} tokens. "
                              f"However, you requested {prompt_len + wanted} tokens ({prompt_len} in the "
                              f"prompt, {wanted} for the completion). Please reduce the length of the prompt "
                              "or completion.", "messages", "context_length_exceeded")
        return SamplingParams(max_tokens=wanted, temperature=body.temperature, top_p=body.top_p, seed=body.seed,
                              stop=body.stops())

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": served.model, "engine": engine.name}

    @app.get("/v1/models")
    def list_models(who: str = Depends(authorised)) -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model:path}")
    def get_model(model: str, who: str = Depends(authorised)) -> dict[str, Any]:
        check_model(model)
        return model_card()

    @app.get("/v1/stats")
    def stats(who: str = Depends(authorised)) -> dict[str, Any]:
        """Commons' own: the engine and what the batcher did (batch sizes), for benches and tests."""
        return {"engine": engine.name, "max_batch": engine.max_batch, "repo_id": served.repo_id,
                "commit": served.commit, **batcher.stats.as_dict()}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, who: str = Depends(authorised)) -> Response | dict[str, Any]:
        check_model(body.model)
        try:
            prompt = engine.chat_prompt([m.plain() for m in body.messages])
        except ValueError as exc:
            raise OpenAIError(400, str(exc), "messages", "no_chat_template") from None
        limit = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
        params = sampling(body, len(prompt), limit, engine.context_length)
        return await _respond("chat", body, prompt, params)

    @app.post("/v1/completions", response_model=None)
    async def complete(body: CompletionRequest, who: str = Depends(authorised)) -> Response | dict[str, Any]:
        check_model(body.model)
        text = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
        prompt = engine.encode(text)
        if not prompt:
            raise OpenAIError(400, "The prompt is empty.", "prompt", "invalid_value")
        params = sampling(body, len(prompt), body.max_tokens, 16)  # OpenAI's default for completions
        return await _respond("text", body, prompt, params)

    async def _respond(kind: str, body: _Sampling, prompt: list[int], params: SamplingParams) -> Response | dict[
            str, Any]:
        request = batcher.submit(prompt, params)
        ident = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream:
            usage = body.stream_options.include_usage if body.stream_options else False
            return StreamingResponse(_stream(kind, ident, created, request.events(), usage),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        parts: list[str] = []
        async for event in request.events():
            if isinstance(event, Delta):
                parts.append(event.text)
            elif isinstance(event, Failed):
                raise OpenAIError(500, event.message, None, "engine_error", "server_error")
            else:
                return _whole(kind, ident, created, "".join(parts), event)
        raise OpenAIError(500, "generation ended without a result", None, "engine_error", "server_error")

    def _whole(kind: str, ident: str, created: int, text: str, end: Finished) -> dict[str, Any]:
        usage = {"prompt_tokens": end.prompt_tokens, "completion_tokens": end.completion_tokens,
                 "total_tokens": end.prompt_tokens + end.completion_tokens}
        if kind == "chat":
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                                      "logprobs": None, "finish_reason": end.reason}
            return {"id": ident, "object": "chat.completion", "created": created, "model": served.model,
                    "system_fingerprint": None, "choices": [choice], "usage": usage}
        return {"id": ident, "object": "text_completion", "created": created, "model": served.model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": end.reason}], "usage": usage}

    async def _stream(kind: str, ident: str, created: int, events: AsyncIterator[Delta | Finished | Failed],
                      include_usage: bool) -> AsyncIterator[str]:
        obj = "chat.completion.chunk" if kind == "chat" else "text_completion"

        def chunk(choice: dict[str, Any] | None, usage: dict[str, int] | None = None) -> str:
            data: dict[str, Any] = {"id": ident, "object": obj, "created": created, "model": served.model,
                                    "system_fingerprint": None, "choices": [choice] if choice else []}
            if include_usage:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n"

        def piece(text: str | None, reason: str | None, first: bool = False) -> dict[str, Any]:
            if kind == "chat":
                delta: dict[str, Any] = {} if text is None else {"content": text}
                if first:
                    delta = {"role": "assistant", "content": ""}
                return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": reason}

        if kind == "chat":
            yield chunk(piece(None, None, first=True))
        async for event in events:
            if isinstance(event, Delta):
                if event.text:
                    yield chunk(piece(event.text, None))
            elif isinstance(event, Failed):
                error = {"message": event.message, "type": "server_error", "param": None, "code": "engine_error"}
                yield f"data: {json.dumps({'error': error})}\n\n"
                break
            else:
                yield chunk(piece(None, event.reason))
                if include_usage:
                    yield chunk(None, {"prompt_tokens": event.prompt_tokens,
                                       "completion_tokens": event.completion_tokens,
                                       "total_tokens": event.prompt_tokens + event.completion_tokens})
        yield "data: [DONE]\n\n"

    return app
