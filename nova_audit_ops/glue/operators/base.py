"""The base of nova-audit's working operators: which task, which connections, which hook."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from nova_audit_ops.clients import secrets
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.glue import runtime
from nova_audit_ops.glue.hooks.nova import DEFAULT_API_DB_CONN_ID, NovaHook
from nova_audit_ops.settings.errors import DatabaseUnreachableError, NovaAuditError


class NovaTaskOperator(BaseOperator):
    """An operator that runs part of a nova-audit task; it resolves its hook in get_hook().

    `__init__` only stores its arguments: no connection is looked up or opened
    before execute().
    """

    def __init__(
        self,
        *,
        nova_task: str,
        nova_conn_id: str = NovaHook.default_conn_name,
        api_db_conn_id: str = DEFAULT_API_DB_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.nova_task = nova_task
        self.nova_conn_id = nova_conn_id
        self.api_db_conn_id = api_db_conn_id

    def get_hook(self) -> NovaHook:
        """The hook this run takes its config and connections from (override to change)."""
        return NovaHook(nova_conn_id=self.nova_conn_id, api_db_conn_id=self.api_db_conn_id)

    @contextlib.contextmanager
    def planning_context(
        self, context: Context, hook: NovaHook | None = None
    ) -> Iterator[RunContext]:
        """The run's context for a step that plans before anything is written.

        A bad param or an unknown cell fails the run without retries (retrying cannot
        fix it); an unreachable database may be transient and is left to Airflow's
        retries. The engines are disposed of when the step ends.
        """
        ctx = None
        try:
            ctx = runtime.open_context(self.nova_task, context, hook or self.get_hook())
            yield ctx
        except DatabaseUnreachableError:
            raise
        except NovaAuditError as exc:
            raise AirflowFailException(secrets.scrub(str(exc))) from None
        finally:
            if ctx is not None:
                ctx.engines.dispose()
