"""`subagents eval`: regression tests for agent prompts. Cases (cases.py) run on the app (runner.py), are
checked (expectations.py) and judged (judge.py), and add up to pass rates (results.py); offline.py wires
the fake model for `--model fake`."""
