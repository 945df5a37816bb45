"""edgeml: a Kubernetes operator for the whole edge ML lifecycle."""

__version__ = "0.1.0"
