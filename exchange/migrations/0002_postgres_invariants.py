"""Invariants PostgreSQL enforces for the ledger, beyond Django's constraints.

- Posted rows (journal transactions, postings, serial movements, issuances, retirements, audit events,
  checkpoints) are append-only: UPDATE and DELETE are refused by a trigger.
- Every journal transaction balances per asset: a deferred constraint trigger checks it at commit.
- Postings can only be added to a journal transaction in the database transaction that created it
  (so a committed entry can't be unbalanced later).
- Serial blocks of an asset never overlap: an exclusion constraint over int8range.

The posting service and ``manage.py reconcile`` check the same rules in Python.
"""

from django.db import migrations

from core.db import PostgresOnlySQL

APPEND_ONLY_TABLES = [
    "exchange_transaction",
    "exchange_posting",
    "exchange_serialmovement",
    "exchange_issuance",
    "exchange_retirement",
    "exchange_auditevent",
    "exchange_checkpoint",
]

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """
    CREATE FUNCTION greenledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'greenledger: % of % rows is refused: posted rows are never changed or deleted',
            TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    *[
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()"
        for table in APPEND_ONLY_TABLES
    ],
    # The database transaction that created each journal entry (not a model field).
    "ALTER TABLE exchange_transaction ADD COLUMN xact xid8 NOT NULL DEFAULT pg_current_xact_id()",
    """
    CREATE FUNCTION greenledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad record;
    BEGIN
        SELECT asset_id, SUM(quantity) AS net INTO bad
          FROM exchange_posting WHERE transaction_id = NEW.id
         GROUP BY asset_id HAVING SUM(quantity) <> 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'greenledger: transaction % does not balance in asset % (net %)',
                NEW.id, bad.asset_id, bad.net USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE CONSTRAINT TRIGGER exchange_transaction_balanced AFTER INSERT ON exchange_transaction "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION greenledger_check_balanced()",
    """
    CREATE FUNCTION greenledger_postings_same_xact() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        late bigint;
    BEGIN
        SELECT t.id INTO late FROM new_postings n JOIN exchange_transaction t ON t.id = n.transaction_id
         WHERE t.xact <> pg_current_xact_id() LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'greenledger: transaction % is committed; add a new transaction instead', late
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER exchange_posting_same_xact AFTER INSERT ON exchange_posting "
    "REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION greenledger_postings_same_xact()",
    "ALTER TABLE exchange_serialblock ADD CONSTRAINT block_no_overlap "
    "EXCLUDE USING gist (asset_id WITH =, int8range(first, last, '[]') WITH &&)",
    "CREATE INDEX movement_range_gist ON exchange_serialmovement USING gist (asset_id, int8range(first, last, '[]'))",
]

BACKWARD = [
    "DROP INDEX IF EXISTS movement_range_gist",
    "ALTER TABLE exchange_serialblock DROP CONSTRAINT IF EXISTS block_no_overlap",
    "DROP TRIGGER IF EXISTS exchange_posting_same_xact ON exchange_posting",
    "DROP FUNCTION IF EXISTS greenledger_postings_same_xact()",
    "DROP TRIGGER IF EXISTS exchange_transaction_balanced ON exchange_transaction",
    "DROP FUNCTION IF EXISTS greenledger_check_balanced()",
    "ALTER TABLE exchange_transaction DROP COLUMN IF EXISTS xact",
    *[f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in APPEND_ONLY_TABLES],
    "DROP FUNCTION IF EXISTS greenledger_refuse_change()",
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0001_initial")]

    operations = [PostgresOnlySQL(sql=FORWARD, reverse_sql=BACKWARD)]
