"""Tools for testing hwkit backends."""
