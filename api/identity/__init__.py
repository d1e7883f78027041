"""Accounts, memberships, sign-up, sign-in, sessions and roles."""
