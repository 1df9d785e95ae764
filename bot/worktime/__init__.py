"""worktime."""
