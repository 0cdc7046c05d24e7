"""`python -m replication`: the same as the `repl` command."""

from .cli import app

app(prog_name="repl")
