"""Payments through Stripe: deposits for reservations on the tenant's connected account,
webhooks stored once and processed by a job, and a double-entry ledger."""
