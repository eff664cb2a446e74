"""Pure tensor math shared by analyzers (no state, no I/O)."""
