"""Anju gateway: app factory, settings, GraphQL wiring and the business domains."""
