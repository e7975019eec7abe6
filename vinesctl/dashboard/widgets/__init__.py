"""Widgets of the dashboard: the presence table, the server panel, the status bar."""
