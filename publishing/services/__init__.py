"""Publishing writes, by concern: content, campaigns, audience, sending, tracking."""
