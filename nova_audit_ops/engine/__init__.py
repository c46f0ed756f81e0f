"""Floor 2: what every task runs on: the run context, paging and markers, time limits, reports."""
