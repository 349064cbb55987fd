"""Aggregate report over all (model, seed) runs, the comparison with the baseline, and checks on the written outputs."""
from .aggregate import DEFAULT_SEEDS, METRICS, aggregate, load_run, mean_std
from .compare import DEFAULT_BOOT_SEED, DEFAULT_N_BOOT, compare_runs, read_test_split
from .validate import SummaryValidationError, load_summary_schema, validate_outputs, validate_summary

__all__ = [
    "DEFAULT_SEEDS", "METRICS", "aggregate", "load_run", "mean_std",
    "DEFAULT_BOOT_SEED", "DEFAULT_N_BOOT", "compare_runs", "read_test_split",
    "SummaryValidationError", "load_summary_schema", "validate_outputs", "validate_summary",
]
