"""tuneboard's domain logic. Nothing in this package imports streamlit."""

__version__ = "0.1.0"
