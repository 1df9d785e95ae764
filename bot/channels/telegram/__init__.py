"""channels/telegram."""
