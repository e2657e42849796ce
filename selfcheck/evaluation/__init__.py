"""Evaluation: dashboard, exports, anonymisation, typology."""
