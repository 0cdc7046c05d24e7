-- The salted digests of the connection strings setup gave repl's subscriptions.
SELECT subscription, salt, digest FROM repl.subscription_conninfo
