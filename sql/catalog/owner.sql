-- The config and target this database is the target of (run only when repl.owner exists).
SELECT config, target, id FROM repl.owner
