"""Kubernetes resource quantities as text (no pydantic: the edge server's fetch reads them
too, through registry/versions.py)."""

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
"""A quantity such as `500m`, `2`, `256Mi` (the API server's grammar, without exponents)."""
