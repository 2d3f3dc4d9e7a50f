"""Job pages: your jobs (`/jobs`), one job live (`/jobs/{id}`), cancel, and the fine-tune form of a model.

Access is the jobs service's (`Jobs`): a job is visible to its owner and to site administrators; to
anyone else it does not exist (404). The job page is complete without JavaScript; with it, htmx
polls `/jobs/{id}/live` every two seconds, which answers the status block again (progress, loss
curve, outcome) and, out of band, the log lines after the last one the page has. When the job
ends, the status block comes back without its polling trigger and the polling stops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from commons import errors as e
from commons.accounts.actors import Actor
from commons.accounts.permissions import can_create_in
from commons.api.audit import audit
from commons.db.models import Job, JobEvent
from commons.hub.gitrepo import MAIN, GitRepo
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, RepoQuery
from commons.jobs.service import Jobs
from commons.jobs.states import InvalidJobTransition, JobNotFound, JobState
from commons.ml.specs import KINDS, LoraRecipe, SpecError, parse_spec
from commons.web.charts import finite, loss_chart
from commons.web.deps import ServicesDep, SessionDep, SignedInDep, SignedInForm, ViewerDep
from commons.web.pageroute import PageRoute, Rerender
from commons.web.panels import Panel, register_panel
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import render
from commons.web.urls import repo_url, with_query

router = APIRouter(route_class=PageRoute)

STATES = tuple(s.value for s in JobState)
PER_PAGE = 50
LOG_LINES = 1000  # the page shows the newest lines; `commons jobs logs` has them all
MAX_EVENTS = 50_000
POLL = "every 2s"
STOP_POLLING = 286  # htmx: "stop polling" status


# ---------------------------------------------------------------- what a job page shows
@dataclass(frozen=True)
class LogLine:
    id: int
    at: str  # HH:MM:SS (UTC)
    level: str
    text: str


def log_line(event: JobEvent, everything: bool = False) -> LogLine | None:
    """The log line an event shows as, or None (progress points are the chart's; stderr only on request)."""
    data, at = event.data or {}, event.at.strftime("%H:%M:%S") if event.at else ""
    if event.kind == "state":
        error = f": {data['error']}" if data.get("error") else ""
        return LogLine(event.id, at, "state", f"state {data.get('state')}{error}")
    if event.kind == "metric":
        value = finite(data.get("value"))
        shown = f"{value:.4f}" if value is not None else str(data.get("value"))
        return LogLine(event.id, at, "metric", f"{data.get('name')} = {shown}")
    if event.kind == "log" and (everything or data.get("level") != "stderr"):
        return LogLine(event.id, at, str(data.get("level", "info")), str(data.get("message", "")))
    if event.kind == "progress" and everything:
        return LogLine(event.id, at, "progress", f"step {data.get('step')}/{data.get('total')} loss {data.get('loss')}")
    return None


def duration(seconds: float | None) -> str:
    """`1 h 02 min`, `3 min 05 s`, `42 s`."""
    if seconds is None or seconds < 0:
        return ""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


@dataclass(frozen=True)
class JobInput:
    name: str
    repo_type: str
    repo_id: str
    revision: str
    url: str  # the repo page
    commit_url: str  # the pinned commit's page


def job_inputs(job: Job) -> list[JobInput]:
    """The job's input repos at the commits they were pinned to (the spec's INPUTS, in their order)."""
    spec = job.spec or {}
    spec_type = KINDS.get(job.kind)
    names = list(spec_type.INPUTS) if spec_type is not None else [k for k, v in spec.items() if isinstance(v, dict)]
    out = []
    for name in names:
        given = spec.get(name)
        if not isinstance(given, dict) or not isinstance(given.get("repo_id"), str) or "/" not in given["repo_id"]:
            continue
        kind = RepoType.DATASET if given.get("repo_type") == "dataset" else RepoType.MODEL
        namespace, _, repo_name = given["repo_id"].partition("/")
        base = repo_url(kind, namespace, repo_name)
        revision = str(given.get("revision", ""))
        out.append(JobInput(name, kind.value, given["repo_id"], revision, base, f"{base}/commit/{revision}"))
    return out


def summary(job: Job) -> str:
    try:
        return parse_spec(job.kind, job.spec).summary()
    except (SpecError, TypeError, ValueError):
        return f"{job.kind} job"


@dataclass
class JobPage:
    """A job with everything its page shows, built once per request."""

    job: Job
    owner: str | None
    summary: str
    inputs: list[JobInput]
    events: list[JobEvent] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return not JobState(self.job.state).terminal

    @property
    def progress(self) -> dict[str, Any]:
        return dict(self.job.progress or {})

    @property
    def percent(self) -> int | None:
        step, total = finite(self.progress.get("step")), finite(self.progress.get("total"))
        if step is None or not total:
            return None
        return max(0, min(100, round(100 * step / total)))

    @property
    def output(self) -> dict[str, str] | None:
        """The published repo and commit, once the job succeeded."""
        result = self.job.result or {}
        repo_id, commit = result.get("output_repo"), result.get("commit")
        if self.job.state != JobState.SUCCEEDED or not isinstance(repo_id, str) or "/" not in repo_id:
            return None
        namespace, _, name = repo_id.partition("/")
        base = repo_url(RepoType.MODEL, namespace, name)
        return {"repo_id": repo_id, "url": base, "commit": str(commit or ""),
                "commit_url": f"{base}/commit/{commit}" if commit else base}

    @property
    def eta(self) -> str:
        return duration(finite(self.progress.get("eta_s")))

    @property
    def timeout(self) -> str:
        return duration(self.job.timeout_s)

    @property
    def wall_time(self) -> str:
        started, ended = self.job.started_at, self.job.finished_at
        return duration((ended - started).total_seconds()) if started and ended else ""

    @property
    def has_curve(self) -> bool:
        """Whether a loss was reported yet (before that, the chart would be an empty frame)."""
        return any(ev.kind in ("progress", "metric") for ev in self.events)

    def chart(self) -> str:
        return loss_chart((ev.kind, ev.data or {}) for ev in self.events)

    def log(self, after: int = 0, everything: bool = False) -> list[LogLine]:
        lines = [line for ev in self.events if ev.id > after and (line := log_line(ev, everything))]
        return lines[-LOG_LINES:]

    @property
    def cursor(self) -> int:
        return self.events[-1].id if self.events else 0


def _job_page(jobs: Jobs, actor: Actor, job_id: int) -> JobPage:
    job = jobs.get(actor, job_id)
    events: list[JobEvent] = []
    while len(events) < MAX_EVENTS:
        batch = jobs.events(actor, job_id, events[-1].id if events else 0, 5000)
        events.extend(batch)
        if len(batch) < 5000:
            break
    return JobPage(job, jobs.owner_name(job), summary(job), job_inputs(job), events)


def _not_found(request: Request, exc: JobNotFound) -> HTMLResponse:
    return render(request, "pages/error.html", code=404, title="Job not found", message=exc.message,
                  status_code=404)


# ---------------------------------------------------------------- routes
@router.get("/jobs")
def job_list(request: Request, actor: SignedInDep, session: SessionDep, services: ServicesDep,
             state: str = "", all: str = "", before: int | None = None) -> Response:
    everyone = all == "1" and actor.is_admin
    if state and state not in STATES:
        raise e.InvalidRequest(f"Unknown job state {state!r}; one of {', '.join(STATES)}")
    jobs = Jobs(session, services.storage)
    rows = jobs.list_jobs(actor, state or None, everyone, PER_PAGE + 1, before)
    more = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    listed = [JobPage(j, jobs.owner_name(j), summary(j), job_inputs(j)) for j in rows]
    older = with_query("/jobs", state=state, all="1" if everyone else None, before=rows[-1].id) if more else None
    return render(request, "pages/jobs.html", jobs=listed, state=state, everyone=everyone, states=STATES,
                  older=older, is_admin=actor.is_admin, paged=before is not None)


@router.get("/jobs/{job_id:int}")
def job_detail(request: Request, job_id: int, actor: SignedInDep, session: SessionDep, services: ServicesDep,
               log: str = "") -> Response:
    try:
        page = _job_page(Jobs(session, services.storage), actor, job_id)
    except JobNotFound as exc:
        return _not_found(request, exc)
    everything = log == "all"
    return render(request, "pages/job.html", page=page, job=page.job, lines=page.log(0, everything),
                  everything=everything, poll=POLL, log_limit=LOG_LINES)


@router.get("/jobs/{job_id:int}/live")
def job_live(request: Request, job_id: int, viewer: ViewerDep, session: SessionDep, services: ServicesDep,
             after: int = 0, log: str = "") -> Response:
    """The status block again, and the log lines after `after` (swapped in out of band)."""
    if viewer.actor is None:
        # Signed out meanwhile: a redirect would swap the sign-in page into the block; 286 stops htmx polling.
        return Response(status_code=STOP_POLLING, headers={"Cache-Control": "no-store"})
    try:
        page = _job_page(Jobs(session, services.storage), viewer.actor, job_id)
    except JobNotFound as exc:
        return _not_found(request, exc)
    everything = log == "all"
    return render(request, "partials/job_live_update.html", page=page, job=page.job,
                  lines=page.log(after, everything), everything=everything, poll=POLL,
                  headers={"Cache-Control": "no-store"})


@router.post("/jobs/{job_id:int}/cancel")
def cancel_job(request: Request, job_id: int, actor: SignedInForm, session: SessionDep, services: ServicesDep
               ) -> Response:
    jobs = Jobs(session, services.storage)
    try:
        jobs.cancel(actor, job_id)
    except JobNotFound as exc:
        return _not_found(request, exc)
    except InvalidJobTransition as exc:
        raise e.Conflict(exc.message) from None
    audit(request, "job.cancel", f"job:{job_id}", actor.name, via="web")
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


# ---------------------------------------------------------------- fine-tune form
_DEFAULTS = LoraRecipe()
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class FinetuneForm:
    """The form's fields as typed (strings), so a form with errors comes back exactly as it was sent."""

    dataset: str = ""
    output_namespace: str = ""
    output_name: str = ""
    private: str = ""
    base_revision: str = MAIN
    max_steps: str = ""
    epochs: str = str(_DEFAULTS.epochs)
    rank: str = str(_DEFAULTS.rank)
    alpha: str = str(_DEFAULTS.alpha)
    learning_rate: str = str(_DEFAULTS.learning_rate)
    prompt_format: str = "chat"
    text_column: str = _DEFAULTS.text_column
    instruction_column: str = _DEFAULTS.instruction_column
    response_column: str = _DEFAULTS.response_column
    eval_split: str = ""
    batch_size: str = str(_DEFAULTS.batch_size)
    max_seq_len: str = str(_DEFAULTS.max_seq_len)
    target_modules: str = ", ".join(_DEFAULTS.target_modules)


async def read_finetune_form(request: Request) -> FinetuneForm:
    form = await request.form()
    values = {f.name: str(form.get(f.name, "")).strip() for f in fields(FinetuneForm) if f.name in form}
    return FinetuneForm(**values)


FinetuneFormDep = Annotated[FinetuneForm, Depends(read_finetune_form)]

_INTS = ("max_steps", "rank", "alpha", "batch_size", "max_seq_len")
_FLOATS = ("epochs", "learning_rate")


def finetune_spec(base: str, form: FinetuneForm) -> tuple[dict[str, Any], dict[str, str]]:
    """The job spec a filled-in form asks for, and the errors of its fields (by field name)."""
    errors: dict[str, str] = {}
    recipe: dict[str, Any] = {}
    for name in _INTS:
        raw = getattr(form, name)
        if raw == "" and name == "max_steps":
            continue
        try:
            recipe[name] = int(raw)
        except ValueError:
            errors[name] = "Enter a whole number"
    for name in _FLOATS:
        try:
            recipe[name] = float(getattr(form, name))
        except ValueError:
            errors[name] = "Enter a number"
    if form.prompt_format not in ("chat", "plain"):
        errors["prompt_format"] = "Choose chat or plain text"
    recipe["prompt_format"] = form.prompt_format
    columns = ("text_column",) if form.prompt_format == "plain" else ("instruction_column", "response_column")
    for name in columns:
        if not getattr(form, name):
            errors[name] = "Name the dataset column"
        recipe[name] = getattr(form, name)
    if form.eval_split:
        recipe["eval_split"] = form.eval_split
    recipe["target_modules"] = [m.strip() for m in form.target_modules.split(",") if m.strip()]
    if not errors:
        try:  # the recipe's own checks, so they show beside their fields before anything is looked up
            LoraRecipe(**{**recipe, "target_modules": tuple(recipe["target_modules"])}).validate()
        except SpecError as exc:
            message = str(exc).removeprefix("recipe: ")
            errors[_field_of(message) or "target_modules"] = message
    dataset, _, dataset_rev = form.dataset.partition("@")
    if not dataset:
        errors["dataset"] = "Choose a dataset"
    if not form.output_name:
        errors["output_name"] = "Name the new model repo"
    revision = form.base_revision if _SHA.match(form.base_revision) else MAIN
    spec = {"base": {"repo_id": base, "revision": revision},
            "dataset": {"repo_id": dataset, "revision": dataset_rev or MAIN},
            "output_repo": f"{form.output_namespace}/{form.output_name}", "private": form.private == "on",
            "recipe": recipe}
    return spec, errors


def _field_of(message: str) -> str | None:
    """The form field a spec error names ("recipe: rank must be at least 1" -> rank)."""
    for f in fields(FinetuneForm):
        if re.search(rf"\b{f.name}\b", message):
            return f.name
    lowered = message.lower()
    if "create a repo under" in lowered:
        return "output_namespace"
    return "output_name" if "output repo" in lowered else None


def _namespaces(actor: Actor) -> list[str]:
    return [actor.name, *sorted(org for org in actor.orgs if can_create_in(actor, org))]


def _free_name(view: RepoView, namespace: str, stem: str) -> str:
    for n in range(1, 50):
        name = stem if n == 1 else f"{stem}-{n}"
        if view.repos.find(RepoRef.parse(RepoType.MODEL, f"{namespace}/{name}")) is None:
            return name
    return stem


def _finetunable(view: RepoView) -> GitRepo:
    if view.kind is not RepoType.MODEL:
        raise e.RepoNotFound(view.ref.repo_id, "Only models can be fine-tuned")
    view.require(Need.FILES)
    return view.git()


def _form_page(request: Request, view: RepoView, actor: Actor, form: FinetuneForm, code: int = 200,
               error: str | None = None, field_errors: dict[str, str] | None = None) -> HTMLResponse:
    datasets = view.repos.list(actor, RepoQuery(RepoType.DATASET, sort="lastModified", limit=100))
    return render(request, "pages/job_finetune.html", code=code, view=view, repo=view.repo, tab="finetune",
                  rev=MAIN, form=form, error=error, errors=field_errors or {}, namespaces=_namespaces(actor),
                  datasets=[d.repo_id for d in datasets], defaults=_DEFAULTS)


@repo_route("/finetune")
def finetune_page(request: Request, view: RepoViewDep, actor: SignedInDep) -> Response:
    git = _finetunable(view)
    try:
        head = git.resolve(MAIN)
    except e.RevisionNotFound:
        raise e.InvalidRequest(f"{view.repo.repo_id} has no commits on {MAIN} yet: nothing to fine-tune") from None
    form = FinetuneForm(output_namespace=actor.name, output_name=_free_name(view, actor.name,
                        f"{view.repo.name}-lora"), base_revision=head)
    return _form_page(request, view, actor, form)


_STATUS = ((e.Conflict, 409), (e.PermissionDenied, 403), (e.RepoNotFound, 404), (e.RevisionNotFound, 404),
           (e.GatedRepo, 403))


@repo_route("/finetune", methods=("POST",))
def submit_finetune(request: Request, view: RepoViewDep, actor: SignedInForm, form: FinetuneFormDep) -> Response:
    _finetunable(view)
    spec, field_errors = finetune_spec(view.repo.repo_id, form)
    if field_errors:
        raise Rerender(_form_page(request, view, actor, form, 400, "Some fields need attention.", field_errors))
    try:
        job = Jobs(view.repos.session, view.repos.storage).submit(actor, "finetune", spec)
    except e.CommonsError as exc:
        code = next((status for cls, status in _STATUS if isinstance(exc, cls)), 400)
        message, where = exc.message, _field_of(exc.message)
        if isinstance(exc, e.GatedRepo | e.RepoNotFound | e.RevisionNotFound):
            where = "dataset"  # the base was checked above; what is left to find is the dataset
            if isinstance(exc, e.GatedRepo):
                message = f"{exc.repo_id} is gated: ask for access on its page first"
        raise Rerender(_form_page(request, view, actor, form, code, message, {where: message} if where else {})
                       ) from None
    audit(request, "job.submit", f"job:{job.id}", actor.name, kind=job.kind, output=spec["output_repo"], via="web")
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


def _panel(view: RepoView, git: GitRepo, commit: str | None) -> dict[str, Any] | None:
    """The card page's fine-tune panel: for signed-in users who may read this model's files."""
    if view.kind is not RepoType.MODEL or view.viewer.actor is None or commit is None or not view.can_read:
        return None
    return {"url": f"{view.base}/finetune"}


register_panel(Panel("finetune", "partials/job_finetune_panel.html", _panel, order=60))
