-- The masking key (only repl's owner role can read it). Run only when repl.secret exists.
SELECT ikey, okey, source FROM repl.secret
