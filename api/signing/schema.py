"""Signing has no GraphQL of its own: each signed subject's domain exposes its steps (contracts:
``api/sales/schema_contract.py``)."""
