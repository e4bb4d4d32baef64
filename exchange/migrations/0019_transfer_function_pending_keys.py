"""``greenledger_transfer`` honours a key already used by a pending transfer.

A transfer's Idempotency-Key is recorded either on its journal entry (an immediate transfer) or on a
pending transfer (one to an untrusted account, carried out later). Both must answer for the key: a retry
after the trust list changed would otherwise find nothing under the key in the other store and move the
units a second time. The function now looks for a pending transfer of the participant under the key
before it opens the journal entry, and answers ``pending`` (the service replays that transfer, or
refuses the key if the request differs). The rest of the function is migration 0016's, unchanged.
"""

from importlib import import_module

from django.db import migrations

from exchange.db import PostgresOnlySQL

_PREVIOUS = import_module("exchange.migrations.0016_transfer_function").TRANSFER_FUNCTION
_OPENING = "BEGIN\n    INSERT INTO exchange_transaction"
_PENDING_CHECK = """BEGIN
    IF p_key IS NOT NULL AND p_participant IS NOT NULL AND EXISTS (
        SELECT 1 FROM exchange_pendingtransfer WHERE participant_id = p_participant AND idempotency_key = p_key
    ) THEN
        RETURN QUERY SELECT 'pending'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint[];
        RETURN;
    END IF;
    INSERT INTO exchange_transaction"""
assert _PREVIOUS.count(_OPENING) == 1, "migration 0016's function no longer opens as expected"

FORWARD = [_PREVIOUS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1).replace(_OPENING, _PENDING_CHECK)]
BACKWARD = [_PREVIOUS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0018_cheaper_trade_trigger")]

    operations = [PostgresOnlySQL(sql=FORWARD, reverse_sql=BACKWARD)]
