"""The base of nova-audit's working operators: which task, which connections, which hook."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from nova_audit_ops.glue.hooks.nova import DEFAULT_API_DB_CONN_ID, NovaHook


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
