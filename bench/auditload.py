"""Audit events in bulk, hashed as ``audit_record`` hashes them (the body built server-side)."""

from __future__ import annotations

from django.db import connection, transaction


def load_events(count: int) -> None:
    """``count`` events of action ``bench.event`` with a small payload, in one INSERT ... SELECT."""
    body = (
        '\'{"action":"bench.event","actor":{"label":"system:bench","participant":null,"user":null},'
        '"object":{"id":"\' || s.g || \'","type":"bench"},"payload":\' || s.payload || '
        "',\"time\":\"' || to_char(s.t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '\"}'"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO exchange_auditevent (seq, created_at, actor_user_id, actor_participant_id, actor_label, "
            "action, object_type, object_id, payload, hash) "
            "SELECT s.seq, s.t, NULL, NULL, 'system:bench', 'bench.event', 'bench', s.g::text, s.payload, "
            f"encode(sha256(convert_to(s.seq::text || '|' || {body}, 'UTF8')), 'hex') "
            "FROM (SELECT nextval(pg_get_serial_sequence('exchange_auditevent', 'seq')) AS seq, g, "
            "      now() + make_interval(secs => g / 1000.0) AS t, '{\"n\":\"' || g || '\"}' AS payload "
            "      FROM generate_series(1, %s) AS g) AS s",
            [count],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE exchange_auditevent")
