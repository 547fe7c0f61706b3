"""Optuna glue: storage and study handling, trial attributes, artifacts, queries."""

from toolchain.store.records import ModelRecord
from toolchain.store.study import SearchStudy, open_storage

__all__ = ["ModelRecord", "SearchStudy", "open_storage"]
