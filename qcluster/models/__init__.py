"""Pydantic wire models (REST shapes). No behaviour lives here."""
