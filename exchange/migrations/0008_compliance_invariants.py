"""PostgreSQL guards for the compliance records.

- Verified-emission versions, allocation entries, surrenders and their items are append-only.
- An obligation is never deleted; its entity, year and account never change; once assessed (status
  other than ``open``) it never changes again. A closed compliance year never changes again.
- Emission versions and surrenders are only added to an open obligation.
"""

from django.db import migrations

from core.db import PostgresOnlySQL

APPEND_ONLY_TABLES = [
    "exchange_verifiedemission",
    "exchange_allocationentry",
    "exchange_surrender",
    "exchange_surrenderitem",
]

FORWARD = [
    *[
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()"
        for table in APPEND_ONLY_TABLES
    ],
    """
    CREATE FUNCTION greenledger_obligation_assess_once() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR OLD.status <> 'open'
           OR (OLD.year_id, OLD.entity_id, OLD.account_id, OLD.created_at)
              IS DISTINCT FROM (NEW.year_id, NEW.entity_id, NEW.account_id, NEW.created_at) THEN
            RAISE EXCEPTION 'greenledger: obligation % is assessed once and otherwise never changed', OLD.id
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    "CREATE TRIGGER exchange_obligation_assess_once BEFORE UPDATE OR DELETE ON exchange_obligation "
    "FOR EACH ROW EXECUTE FUNCTION greenledger_obligation_assess_once()",
    """
    CREATE FUNCTION greenledger_compliance_year_close_once() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR OLD.closed_at IS NOT NULL OR OLD.year <> NEW.year THEN
            RAISE EXCEPTION 'greenledger: compliance year % is closed or can''t be deleted', OLD.year
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    "CREATE TRIGGER exchange_complianceyear_close_once BEFORE UPDATE OR DELETE ON exchange_complianceyear "
    "FOR EACH ROW EXECUTE FUNCTION greenledger_compliance_year_close_once()",
    """
    CREATE FUNCTION greenledger_obligation_open() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM exchange_obligation WHERE id = NEW.obligation_id AND status = 'open') THEN
            RAISE EXCEPTION 'greenledger: obligation % is assessed; nothing more is recorded for it', NEW.obligation_id
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    *[
        f"CREATE TRIGGER {table}_obligation_open BEFORE INSERT ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION greenledger_obligation_open()"
        for table in ("exchange_verifiedemission", "exchange_surrender")
    ],
]

BACKWARD = [
    *[
        f"DROP TRIGGER IF EXISTS {table}_obligation_open ON {table}"
        for table in ("exchange_verifiedemission", "exchange_surrender")
    ],
    "DROP FUNCTION IF EXISTS greenledger_obligation_open()",
    "DROP TRIGGER IF EXISTS exchange_complianceyear_close_once ON exchange_complianceyear",
    "DROP FUNCTION IF EXISTS greenledger_compliance_year_close_once()",
    "DROP TRIGGER IF EXISTS exchange_obligation_assess_once ON exchange_obligation",
    "DROP FUNCTION IF EXISTS greenledger_obligation_assess_once()",
    *[f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in APPEND_ONLY_TABLES],
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0007_compliance")]

    operations = [PostgresOnlySQL(sql=FORWARD, reverse_sql=BACKWARD)]
