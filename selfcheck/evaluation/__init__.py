"""Evaluators: who may see what (scope), indicators (dashboard), anonymised exports, typology."""
