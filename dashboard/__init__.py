"""The Streamlit app: entrypoint (app.py), login, navigation and shared widgets."""
