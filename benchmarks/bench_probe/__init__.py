"""An empty app listed last in the startup benchmark, to time the ready() calls before it."""
