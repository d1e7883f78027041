"""Live updates: the transactional outbox, the relay, the event bus, the per-process hub and
the graphql-transport-ws endpoint (see docs/live.md)."""
