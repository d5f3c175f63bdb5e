"""Runtimes: the shared executor, LocalRuntime and run recording."""
