"""The world coming in: imagery sources, AOIs, labour-sector datasets, their provenance and validation."""
