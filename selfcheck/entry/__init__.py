"""Typing paper forms into the database: first and second entry, discrepancies."""
