"""The mediator's follow-up list of their people."""
