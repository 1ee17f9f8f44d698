"""Streamlit glue between the pages and `geometry`: session state, cached wrappers, shared widgets."""
