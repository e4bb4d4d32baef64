"""Selectors: read queries. They return querysets or plain data and never write."""
