"""The process node agent: a simulated kubelet whose pods really run, as local processes.

One agent manages a handful of nodes. Each pod gets its own network namespace on
the node's bridge (real addresses that never leave the machine), its volumes as
directories, and its containers as processes started through `launch`.
Run it as `python -m localcluster.agent --help`.
"""
