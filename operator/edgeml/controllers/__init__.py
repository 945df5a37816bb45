"""kopf handlers: parse, observe, plan (pure), apply, report. Importing registers them."""
