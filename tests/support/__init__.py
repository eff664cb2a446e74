"""Helpers shared by the tests: tracker servers, probe analyzers and backends, read-back of tracker files,
a headless browser."""
