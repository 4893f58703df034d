"""olist-dw runner: loads the Olist export into PostgreSQL and drives dbt window by window."""

__version__ = "0.1.0"
