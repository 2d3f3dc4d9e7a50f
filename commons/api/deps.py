"""Request dependencies: services, the unit of work, the caller, repo lookup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.api.auth import authenticate_request
from commons.errors import InvalidRequest
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Repos
from commons.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.session() as session:
        yield session


# "function" scope: the unit of work commits before the response is sent, so a client that got
# 200 for a write never reads the old state in its next request.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_actor(request: Request, session: SessionDep) -> Actor | None:
    """The caller. A token that is sent but invalid is an error (401), never anonymous."""
    return authenticate_request(session, request)


ActorDep = Annotated[Actor | None, Depends(get_actor)]


def get_repos(session: SessionDep, services: ServicesDep) -> Repos:
    return Repos(session, services.storage)


ReposDep = Annotated[Repos, Depends(get_repos)]


def repo_type_from_plural(plural: str) -> RepoType:
    try:
        return RepoType.from_plural(plural)
    except InvalidRequest:
        raise


def repo_ref(repo_type: RepoType, namespace: str, name: str) -> RepoRef:
    return RepoRef.parse(repo_type, f"{namespace}/{name}")


def base_url(request: Request, services: Services) -> str:
    if services.settings.public_url:
        return services.settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")
