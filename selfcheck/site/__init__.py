"""Site-wide pages that belong to no domain: the accessibility statement and the health check."""
