"""Clients (CRM): records with encrypted contact details, lifecycle stages, follow-ups, data
scopes, duplicate detection (see docs/crm.md)."""
