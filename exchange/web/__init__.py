"""Server-rendered pages: the public registry (no login)."""
