"""Services: every write to the registry and the market. One function per operation, keyword-only,
one database transaction, idempotent under a client-chosen key, audited in that same transaction."""
