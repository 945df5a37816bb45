"""The only place that talks to the Kubernetes API (kopf aside, which watches for us)."""
