"""What Nova's API layer checks, where this slice needs the same checks."""
