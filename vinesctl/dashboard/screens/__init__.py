"""Screens of the dashboard: a user's details, help, and small prompts."""
