"""Typed models, engine/session setup, migrations and query functions. Imports nothing from bot."""
