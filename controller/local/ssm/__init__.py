"""Our own SSM service for the local endpoint (see service.py)."""
