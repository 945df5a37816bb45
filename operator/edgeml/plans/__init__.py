"""Pure decisions: from an object and what exists around it, the status (and children) it
should have. No clock, no client: `now` and observations come in as arguments."""
