"""The workbench's SQL state (SQLAlchemy Core): SQLite in the tenant, PostgreSQL by URL."""

from workbench.store.engine import Store, existing_store, insert_ignore, open_store, resolve_url

__all__ = ["Store", "existing_store", "insert_ignore", "open_store", "resolve_url"]
