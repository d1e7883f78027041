"""Tenancy kernel: registry, resolution middleware, sessions, provisioning, migrations."""
