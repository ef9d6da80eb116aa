"""Orchestration with Dask: scan, train and evaluate runs, run folders, resumability; the command line."""
