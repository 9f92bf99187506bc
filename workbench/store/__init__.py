"""The workbench's SQL state (SQLAlchemy Core): SQLite in the tenant, PostgreSQL by URL."""

from workbench.store.engine import Store, open_store, resolve_url

__all__ = ["Store", "open_store", "resolve_url"]
