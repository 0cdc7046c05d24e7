"""Benchmarks of repl (not tests): masked logical replication against batch copies and
against unmasked native replication. Run with `python -m bench`; see bench/README.md."""
