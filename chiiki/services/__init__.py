"""Domain services: plain Python, one use case per function, one transaction each; no web framework."""
