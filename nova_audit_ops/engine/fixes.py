"""Fix commands an operator can run as printed: they repeat the run's own choices.

A finding's fix says `nova-audit run host_fault --mode heal`; if the run that
found it was given `--down-after 60`, the rerun without it would use the
configured 300 s and refuse the very host it was told to handle. So every fix
that reruns the same task gets the run's values of the knobs that decide what
is found (not mode, batch size or budgets), where they differ from what the
same config file gives a bare CLI run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Report


def rerun_args(ctx: RunContext) -> list[str]:
    """CLI words for the run's knobs that differ from a bare run's (config) values."""
    configured = ctx.config.settings(ctx.spec)
    words: list[str] = []
    for knob in ctx.spec.param_knobs():
        value = ctx.options.get(knob.name)
        if knob.rerun and value != configured.get(knob.name):
            words += knob.cli_args(value)
    return words


def complete_fix(fix: str, command: str, words: list[str]) -> str:
    """`fix` with `words` inserted after each `command`, minus options it already names."""
    pattern = re.compile(re.escape(command) + r"(?=\s|`|$)")
    if not words or not pattern.search(fix):
        return fix
    missing: list[str] = []
    for flag, value in _options(words):
        named = {flag, "--no-" + flag[2:]} if flag.startswith("--") else {flag}
        if flag == "--cell":
            named = {f"--cell {value}"}
        if not any(_mentions(fix, name) for name in named):
            missing += [flag] if value is None else [flag, value]
    if not missing:
        return fix
    extra = " ".join(shlex.quote(word) for word in missing)
    return pattern.sub(lambda m: f"{m.group(0)} {extra}", fix)


def spell_out_rerun(fix: str, name: str, words: list[str]) -> str:
    """A fix saying "then rerun purge" names the command itself, with `words`."""
    command = " ".join(["nova-audit run", name, *(shlex.quote(w) for w in words)])
    return re.sub(rf"\brerun {re.escape(name)}\b(?!`)", lambda _: f"rerun `{command}`", fix)


def with_rerun_params(ctx: RunContext, report: Report) -> Report:
    """The report with every fix that reruns this task carrying the run's params."""
    words = rerun_args(ctx)
    if not words:
        return report
    mode = ctx.config.settings(ctx.spec).get("mode")
    same_mode = [] if ctx.mode == mode else ["--mode", ctx.mode]
    names = [ctx.spec.name, *ctx.spec.aliases]
    findings = []
    for finding in report.findings:
        fix = finding.fix
        for name in names:
            if fix:
                fix = complete_fix(fix, f"nova-audit run {name}", words)
                fix = spell_out_rerun(fix, name, [*words, *same_mode])
        findings.append(replace(finding, fix=fix) if fix != finding.fix else finding)
    report.findings[:] = findings
    return report


def _options(words: list[str]) -> list[tuple[str, str | None]]:
    """(flag, value) pairs of a CLI word list; boolean flags have no value."""
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words) and not words[i + 1].startswith("--"):
            pairs.append((words[i], words[i + 1]))
            i += 2
        else:
            pairs.append((words[i], None))
            i += 1
    return pairs


def _mentions(fix: str, option: str) -> bool:
    return re.search(re.escape(option) + r"(?=[\s=`,]|$)", fix) is not None
