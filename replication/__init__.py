"""repl: configure PostgreSQL logical replication into filtered, masked staging copies."""

__version__ = "0.1.0"
