"""Relying parties nobody here wrote, run as separate programs by the tests (node and its npm packages)."""
