"""Cross-cutting code that every app uses and that imports no app: the error hierarchy and its code
catalogue (``core.errors``), the ``@service`` wrapper (``core.service``), quantity and price limits
(``core.limits``), money (``core.money``), the market clock (``core.clock``) and database helpers
(``core.db``). ``tests/architecture/test_layers.py`` holds it to that: nothing here imports ``accounts``,
``exchange`` or ``config``.
"""
