"""The `edgeml train` program: read and check a dataset, fit an allow-listed estimator,
evaluate it, export it to ONNX (checked for parity), profile it, compute its drift
baseline, and log and register it in MLflow. Entry point: `program.main`.
"""
