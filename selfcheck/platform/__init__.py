"""Platform layer under every domain package.

Database, models and migrations, configuration, audit trail, rate limits, backup, logging,
languages, security headers, error pages, personal codes and health.
"""
