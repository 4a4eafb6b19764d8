"""The Streamlit dashboard over the results store (`harness dashboard`). Read-only: it never writes trials."""
