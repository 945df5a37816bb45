"""The local cluster: a real Kubernetes control plane and a simulated edge fleet, as processes.

Not part of the product: this is the ground the tests and the demo stand on.
"""
