"""The matching engine: one writer per continuous book, the book in memory, group commit.

An engine process (``manage.py run_engine``) owns the continuous books of the instruments it serves. It takes
orders and cancels from its intake (``transport``) in arrival order, applies each with the trading services
(``exchange.services.orders``: the same rules, holds and audit as ever, matching against the book in memory
instead of querying it), commits a batch of them in one transaction, and only then acknowledges each to the
client that sent it (``engine``). ``book`` is the book; ``client`` is what the API calls; ``writer`` is the
ownership of a book (a session advisory lock and a fencing epoch in ``exchange_bookwriter``).
"""
