"""The long-running controller: git source, scheduling, HTTP (metrics, health, status, webhook)."""
