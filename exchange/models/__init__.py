from exchange.models.assets import Asset, AssetKind, Issuance, Project, ProjectStatus, ProjectType
from exchange.models.audit import AuditEvent, Checkpoint
from exchange.models.holds import Hold, HoldKind, HoldStatus
from exchange.models.ledger import (
    SINK_STATE,
    SYSTEM_ACCOUNT_KINDS,
    Account,
    AccountKind,
    Balance,
    Posting,
    Retirement,
    Transaction,
    TransactionKind,
)
from exchange.models.serials import BlockState, SerialBlock, SerialMovement

__all__ = [
    "SINK_STATE",
    "SYSTEM_ACCOUNT_KINDS",
    "Account",
    "AccountKind",
    "Asset",
    "AssetKind",
    "AuditEvent",
    "Balance",
    "BlockState",
    "Checkpoint",
    "Hold",
    "HoldKind",
    "HoldStatus",
    "Issuance",
    "Posting",
    "Project",
    "ProjectStatus",
    "ProjectType",
    "Retirement",
    "SerialBlock",
    "SerialMovement",
    "Transaction",
    "TransactionKind",
]
