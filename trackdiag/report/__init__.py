"""Report folders (HTML, JSON, PDF) and the sections of ``trackdiag diagnose``."""
