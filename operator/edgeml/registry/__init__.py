"""The only place the operator talks to MLflow (the `edgeml train` program logs its own run)."""
