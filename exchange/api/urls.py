from django.urls import path

from exchange.api import audit, holdings, lookup, movements, registry

urlpatterns = [
    path("projects", registry.ProjectListApi.as_view(), name="projects"),
    path("projects/<str:code>", registry.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<str:code>/issuances", registry.IssuanceListApi.as_view(), name="project-issuances"),
    path("assets", registry.AssetListApi.as_view(), name="assets"),
    path("assets/cea-vintages", registry.CeaVintageCreateApi.as_view(), name="cea-vintages"),
    path("assets/<str:code>", registry.AssetDetailApi.as_view(), name="asset-detail"),
    path("allocations", registry.AllocationCreateApi.as_view(), name="allocations"),
    path("allocations/csv", registry.AllocationCsvApi.as_view(), name="allocations-csv"),
    path("accounts", holdings.AccountListApi.as_view(), name="accounts"),
    path("accounts/<str:number>", holdings.AccountDetailApi.as_view(), name="account-detail"),
    path("accounts/<str:number>/holdings", holdings.HoldingsApi.as_view(), name="account-holdings"),
    path("accounts/<str:number>/blocks", holdings.BlocksApi.as_view(), name="account-blocks"),
    path("accounts/<str:number>/statement", holdings.StatementApi.as_view(), name="account-statement"),
    path("transfers", movements.TransferCreateApi.as_view(), name="transfers"),
    path("retirements", movements.RetirementListApi.as_view(), name="retirements"),
    path("retirements/<int:pk>", movements.RetirementDetailApi.as_view(), name="retirement-detail"),
    path("cancellations", movements.CancellationCreateApi.as_view(), name="cancellations"),
    path("transactions/<int:pk>", lookup.TransactionDetailApi.as_view(), name="transaction-detail"),
    path("serials/<str:asset>/<int:serial>", lookup.SerialLookupApi.as_view(), name="serial-lookup"),
    path("audit/events", audit.AuditEventListApi.as_view(), name="audit-events"),
    path("audit/events/<int:seq>", audit.AuditEventDetailApi.as_view(), name="audit-event-detail"),
    path("audit/events/<int:seq>/proof", audit.AuditProofApi.as_view(), name="audit-proof"),
    path("audit/checkpoints", audit.CheckpointListApi.as_view(), name="audit-checkpoints"),
    path("audit/verify", audit.AuditVerifyApi.as_view(), name="audit-verify"),
    path("audit/seal", audit.AuditSealApi.as_view(), name="audit-seal"),
]
