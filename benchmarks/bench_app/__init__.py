"""A benchmark-only app whose models are generated at import time (see startup.py)."""
