"""Sample datasets for the example pipelines, written as CSV files under a data root."""
