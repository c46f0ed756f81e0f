"""The global step: the part of a task that belongs to no cell, run once per DAG run."""

from __future__ import annotations

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from nova_audit_ops import runner
from nova_audit_ops.clients import secrets
from nova_audit_ops.engine import render
from nova_audit_ops.glue import runtime
from nova_audit_ops.glue.operators.base import NovaTaskOperator
from nova_audit_ops.glue.xcom import push_report


class GlobalStepOperator(NovaTaskOperator):
    """Run the part of a task that belongs to no cell (skipped when cells are chosen)."""

    ui_color = "#f7f1e3"

    def execute(self, context: Context) -> None:
        ctx = runtime.open_context(self.nova_task, context, self.get_hook())
        try:
            if not runner.runs_global_step(ctx):
                raise AirflowSkipException("cells were chosen: the global step needs all of them")
            report = runner.run_global(ctx)
        finally:
            ctx.engines.dispose()
        push_report(context, report)
        title = f"{ctx.spec.name} ({ctx.mode} mode), global step"
        self.log.info("%s", render.table(report, title=title))
        if report.cells_failed:
            problems = "; ".join(f.problem for f in report.findings if f.kind == "cell")
            raise AirflowException(f"global step not finished: {secrets.scrub(problems)}")
