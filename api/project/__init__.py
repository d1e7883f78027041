"""Projects (developments) and their buildings: the first tenant domain, a pattern to copy."""
