"""The audit log: append-only, hash-chained, one per tenant."""
