"""Electronic signing (docs/signing.md): seals, one-time codes, hash-chained events."""
