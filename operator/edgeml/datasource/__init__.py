"""Where training data lives: reading it and telling which version of it is there.

`location` is pure (URIs, object selection, data versions); `s3` is the only place that
talks to an object store (boto3) and `http` the only place that fetches or probes an
http(s) dataset. The training program reads through them; the operator probes through
them for the NewData trigger, so both sides compute a data version the same way.
"""
