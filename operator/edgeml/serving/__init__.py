"""`edgeml serve`: the program the edge inference pods run (Open Inference Protocol v2)."""
