"""CRM writes, one module per concern. Admin actions, API views, dashboard views, Celery tasks and the
import command all call these functions; `from crm import services` then `services.contact_create(...)`.
"""

from ..normalize import custom_fields_clean, email_is_valid, normalize_domain, normalize_email
from .consent import (
    SuppressionError,
    consent_record,
    contact_resubscribe,
    contact_suppress,
    contact_unsubscribe,
)
from .contacts import (
    EDITABLE_FIELDS,
    company_get_or_create,
    contact_create,
    contact_delete,
    contact_merge,
    contact_update,
    contacts_tag,
    tags_ensure,
)
from .enrichment import ENRICHABLE_FIELDS, contacts_needing_enrichment, enrichment_apply, enrichment_ttl
from .gdpr import contact_erase, contact_export_data
from .lifecycle import (
    ALLOWED_TRANSITIONS,
    STAGE_ORDER,
    LifecycleError,
    contact_record_engagement,
    contact_set_verification,
    contact_transition,
    contacts_set_scores,
    normalize_verdict,
    tier_for_score,
)
from .lists import list_add_contacts, list_create, list_remove_contacts, segment_save
from .runs import (
    ENRICH_CHUNK,
    ENRICH_LANES,
    MAX_RUN_CONTACTS,
    ChunkOutcome,
    RunTooLarge,
    enrichment_process_chunk,
    enrichment_start,
    run_lane_step,
    verification_process_chunk,
    verification_start,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ChunkOutcome",
    "EDITABLE_FIELDS",
    "ENRICHABLE_FIELDS",
    "ENRICH_CHUNK",
    "ENRICH_LANES",
    "LifecycleError",
    "MAX_RUN_CONTACTS",
    "RunTooLarge",
    "STAGE_ORDER",
    "SuppressionError",
    "company_get_or_create",
    "consent_record",
    "contact_create",
    "contact_delete",
    "contact_erase",
    "contact_export_data",
    "contact_merge",
    "contact_record_engagement",
    "contact_resubscribe",
    "contact_set_verification",
    "contact_suppress",
    "contact_transition",
    "contact_unsubscribe",
    "contact_update",
    "contacts_needing_enrichment",
    "contacts_set_scores",
    "contacts_tag",
    "custom_fields_clean",
    "email_is_valid",
    "enrichment_apply",
    "enrichment_process_chunk",
    "enrichment_start",
    "enrichment_ttl",
    "list_add_contacts",
    "list_create",
    "list_remove_contacts",
    "normalize_domain",
    "normalize_email",
    "normalize_verdict",
    "run_lane_step",
    "segment_save",
    "tags_ensure",
    "tier_for_score",
    "verification_process_chunk",
    "verification_start",
]
