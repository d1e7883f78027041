"""GraphQL wiring: schema assembly, context, permissions, errors, the HTTP/WebSocket view."""
