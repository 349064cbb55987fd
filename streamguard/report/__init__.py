"""Aggregate report over all (model, seed) runs, and checks on the written outputs."""
from .aggregate import DEFAULT_SEEDS, METRICS, aggregate, load_run, mean_std
from .validate import SummaryValidationError, load_summary_schema, validate_outputs, validate_summary

__all__ = [
    "DEFAULT_SEEDS", "METRICS", "aggregate", "load_run", "mean_std",
    "SummaryValidationError", "load_summary_schema", "validate_outputs", "validate_summary",
]
