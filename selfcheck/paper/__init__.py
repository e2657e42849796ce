"""Paper: printable forms, summaries and codebook PDFs (templates inside the package)."""
