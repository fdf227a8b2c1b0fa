"""Intake: records from CRM webhooks, CSV imports and dropped files, checked and stored."""
