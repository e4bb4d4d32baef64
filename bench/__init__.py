"""Benchmarks against the SQL floor: ``python -m bench`` (``make bench``) prints one table.

Every row is measured in the same run on a PostgreSQL database of its own (``gl_bench`` by default,
created and dropped by the run). Progress goes to stderr, the table to stdout. See
``docs/performance.md`` for what each row measures and the results on the reference machine.
"""
