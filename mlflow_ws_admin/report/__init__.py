"""Renderers of a Plan: text (Rich).  They never touch the database."""
