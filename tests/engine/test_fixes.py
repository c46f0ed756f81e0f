"""Fix commands can be run as printed: they carry the run's own non-default params."""

from __future__ import annotations

import shlex
from typing import Any

from nova_audit_ops.engine.fixes import complete_fix, spell_out_rerun
from nova_audit_ops.engine.report import Code
from tests import support

HOST_FAULT = "nova-audit run host_fault"


def test_the_run_params_go_after_the_task_name_unless_the_fix_names_them() -> None:
    fix = f"fence h1, then run `{HOST_FAULT} --hosts h1 --mode heal`, then evacuate"
    words = ["--down-after", "60", "--hosts", "h1,h2", "--no-reset-instances"]
    assert complete_fix(fix, HOST_FAULT, words) == (
        f"fence h1, then run `{HOST_FAULT} --down-after 60 --no-reset-instances "
        "--hosts h1 --mode heal`, then evacuate"
    )


def test_values_are_quoted_for_the_shell_and_other_commands_are_left_alone() -> None:
    words = ["--before", "2024-01-01 00:00", "--cell", "cell1"]
    assert complete_fix("nova-audit run purge --mode heal", "nova-audit run purge", words) == (
        "nova-audit run purge --before '2024-01-01 00:00' --cell cell1 --mode heal"
    )
    other = "run `nova-audit run discover_hosts --mode heal`, then rerun sync_aggregates"
    assert complete_fix(other, "nova-audit run sync_aggregates", ["--remove-extra"]) == other
    assert complete_fix(other, "nova-audit run discover_hosts", []) == other


def test_a_rerun_in_words_becomes_the_command_with_the_params() -> None:
    fix = "read the task log, fix the cause, then rerun archive_deleted_rows"
    assert spell_out_rerun(fix, "archive_deleted_rows", ["--before", "x y"]) == (
        "read the task log, fix the cause, then rerun "
        "`nova-audit run archive_deleted_rows --before 'x y'`"
    )
    spelled = spell_out_rerun(fix, "archive_deleted_rows", [])
    assert spell_out_rerun(spelled, "archive_deleted_rows", ["--task-log"]) == spelled


def test_the_printed_fix_of_an_audit_run_heals_what_that_run_found(nova_bed: Any) -> None:
    """`--before` decides what archive finds: the fix repeats it, and running it as printed
    archives exactly the rows the audit run counted."""
    url = support.cell_url(nova_bed, "cell1")
    before = "2100-01-01 00:00"
    config = str(nova_bed.config_path)
    args = ("run", "archive_deleted_rows", "--config-file", config, "--cell", "cell1")
    code, report = support.cli_json(*args, "--before", before)
    assert code == Code.WARNING, report
    fixes = {f["fix"] for f in report["findings"] if f["fix"]}
    assert fixes == {
        f"nova-audit run archive_deleted_rows --cell cell1 --before '{before}' --mode heal"
    }, fixes
    command = shlex.split(fixes.pop())
    assert command[:2] == ["nova-audit", "run"]
    result = support.cli(*command[1:], "--config-file", config)
    assert result.returncode == Code.OK, result.stdout + result.stderr
    left = support.query(url, "SELECT COUNT(*) AS n FROM instances WHERE deleted != 0")
    assert left[0].n == 0
