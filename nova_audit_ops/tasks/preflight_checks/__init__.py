"""The checks of the preflight task, grouped by what they look at."""
