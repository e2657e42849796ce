"""Privacy notice and erasure of a person by their code."""
