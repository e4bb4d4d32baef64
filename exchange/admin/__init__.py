"""Admin for registry and exchange staff, one module per domain.

Reference data (accounts, projects) is created through the services; the journal, postings, serial
blocks, holds and audit events are read-only. Issuance and allocation are admin views that call the
same services as the API. Shared classes (``ReadOnlyAdmin``) live in ``exchange.admin.base``.
"""

from django.contrib import admin

# Domain modules are imported here: each registers its admins when imported. A new admin module is a
# domain module in this package, added to these imports.
from exchange.admin import (  # noqa: F401
    approvals,
    audit,
    calendar,
    compliance,
    compliance_rules,
    events,
    ledger,
    market,
    notices,
    pledges,
    registry,
    registry_rules,
    settlement,
    transfers,
)

# The index shows the market at a glance above the app list (exchange/selectors/dashboard.py).
admin.site.index_template = "admin/greenledger_index.html"
