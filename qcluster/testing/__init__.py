"""See ../shared/DESIGN.md for what this package holds."""
