"""Jobs over HTTP (`/api/commons/jobs`): submit, list, show, follow events, cancel.

Follow a running job by polling `GET /api/commons/jobs/{id}/events?after=<last event id>`; the
job itself (`GET /api/commons/jobs/{id}`) carries the latest progress (step, loss, tokens/s, ETA).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from commons.api.audit import audit
from commons.api.deps import ActorDep, ServicesDep, SessionDep
from commons.api.errors import error_response
from commons.errors import InvalidRequest
from commons.jobs.service import Jobs, event_json, job_json
from commons.jobs.states import InvalidJobTransition, JobNotFound

router = APIRouter(prefix="/api/commons/jobs", tags=["jobs"])


def _error(request: Request, exc: JobNotFound | InvalidJobTransition) -> JSONResponse:
    return error_response(exc, getattr(request.state, "actor", None) is None)


@router.post("")
def submit_job(request: Request, session: SessionDep, services: ServicesDep, actor: ActorDep,
               body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Queue a job: `{"kind": "finetune", "spec": {...}, "timeoutS": 3600}`. Inputs named by branch are pinned."""
    spec = body.get("spec")
    timeout = body.get("timeoutS")
    attempts = body.get("maxAttempts", 2)
    if (timeout is not None and not isinstance(timeout, int)) or not isinstance(attempts, int):
        raise InvalidRequest("timeoutS and maxAttempts must be integers")
    jobs = Jobs(session, services.storage)
    job = jobs.submit(actor, str(body.get("kind", "")), spec, timeout, attempts)  # type: ignore[arg-type]
    audit(request, "job.submit", f"job:{job.id}", actor.name if actor else None, kind=job.kind,
          output=job.spec.get("output_repo"))
    return job_json(job, jobs.owner_name(job))


@router.get("")
def list_jobs(session: SessionDep, services: ServicesDep, actor: ActorDep, state: str | None = None,
              all: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              before: int | None = None) -> list[dict[str, Any]]:
    """The caller's jobs, newest first (`all=true`: everyone's, for administrators)."""
    jobs = Jobs(session, services.storage)
    return [job_json(j, jobs.owner_name(j)) for j in jobs.list_jobs(actor, state, all, limit, before)]


@router.get("/{job_id}", response_model=None)
def get_job(request: Request, job_id: int, session: SessionDep, services: ServicesDep, actor: ActorDep
            ) -> dict[str, Any] | JSONResponse:
    jobs = Jobs(session, services.storage)
    try:
        job = jobs.get(actor, job_id)
    except JobNotFound as exc:
        return _error(request, exc)
    return job_json(job, jobs.owner_name(job))


@router.get("/{job_id}/events", response_model=None)
def job_events(request: Request, job_id: int, session: SessionDep, services: ServicesDep, actor: ActorDep,
               after: int = 0, limit: Annotated[int, Query(ge=1, le=5000)] = 1000
               ) -> dict[str, Any] | JSONResponse:
    """Log lines, progress points, metrics and state changes with id > `after`, oldest first."""
    jobs = Jobs(session, services.storage)
    try:
        job = jobs.get(actor, job_id)
        events = jobs.events(actor, job_id, after, limit)
    except JobNotFound as exc:
        return _error(request, exc)
    return {"job": {"id": job.id, "state": job.state, "progress": job.progress or {}},
            "events": [event_json(e) for e in events],
            "next": events[-1].id if events else after}


@router.post("/{job_id}/cancel", response_model=None)
def cancel_job(request: Request, job_id: int, session: SessionDep, services: ServicesDep, actor: ActorDep
               ) -> dict[str, Any] | JSONResponse:
    """Cancel: a queued job at once, a running one as soon as its worker notices (one heartbeat)."""
    jobs = Jobs(session, services.storage)
    try:
        state = jobs.cancel(actor, job_id)
    except (JobNotFound, InvalidJobTransition) as exc:
        return _error(request, exc)
    audit(request, "job.cancel", f"job:{job_id}", actor.name if actor else None)
    return {"id": job_id, "state": state.value, "cancelRequested": True}
