"""govshare oracle: runs beside a providing department, in front of its own HTTP API."""
