"""The FastAPI app of the nova-audit page, mounted by the plugin under the api-server.

Airflow does not protect a plugin's FastAPI app: every route here depends on
`reader`, which authenticates the caller with Airflow's own security code (a
JWT in the Authorization header, else the `_token` cookie the UI sets) and
keeps only the nova_audit DAGs whose runs and XComs the auth manager lets
that user read. No such DAG: 403. No or a bad token: 401/403 from Airflow.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nova_audit_ops.glue.page import URL_PREFIX, data, render, safe

__all__ = ["URL_PREFIX", "app"]
bearer = HTTPBearer(auto_error=False)

app = FastAPI(title="nova-audit", docs_url=None, redoc_url=None, openapi_url=None)


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Any:
    """The caller as Airflow's API authenticates it (401 without a token)."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, None, credentials)


def readable_dags(user: Annotated[Any, Depends(current_user)]) -> list[str]:
    """The nova_audit DAGs whose runs and XComs the user may read; 403 if none."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )

    manager = get_auth_manager()
    dag_ids = sorted(
        d
        for d in manager.get_authorized_dag_ids(user=user, method="GET")
        if d.startswith(data.DAG_PREFIX)
    )
    permitted = [
        d
        for d in dag_ids
        if all(
            manager.is_authorized_dag(
                method="GET", access_entity=entity, details=DagDetails(id=d), user=user
            )
            for entity in (DagAccessEntity.RUN, DagAccessEntity.XCOM)
        )
    ]
    if not permitted:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Forbidden: you may not read the runs of any nova_audit DAG "
            "(ask for read access to them in the auth manager)",
        )
    return permitted


def ui_base() -> str:
    """The path under which Airflow's UI lives ([api] base_url), without a trailing slash."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="/") or "/").path.rstrip("/")


def run_url(run: data.RunRecord) -> str:
    """The run's page in Airflow's UI."""
    return f"{ui_base()}/dags/{quote(run.dag_id, safe='')}/runs/{quote(run.run_id, safe='')}"


def _page_data(dag_ids: list[str]) -> data.PageData:
    from airflow.utils.session import create_session

    now = dt.datetime.now(dt.timezone.utc)
    since = now - dt.timedelta(days=data.DAYS)
    with create_session() as session:
        runs = data.load_runs(session, dag_ids, since)
    return data.build(runs, since, now)


Readable = Annotated[list[str], Depends(readable_dags)]


@app.get("/", response_class=HTMLResponse)
def page(dag_ids: Readable) -> HTMLResponse:
    """The page: per task and cell the last result, open findings, drift over time."""
    return HTMLResponse(render.page(_page_data(dag_ids), run_url))


@app.get("/api/summary")
def summary(dag_ids: Readable) -> JSONResponse:
    """The page's data as JSON."""
    return JSONResponse(safe.tree(data.to_json(_page_data(dag_ids), run_url)))
