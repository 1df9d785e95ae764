"""yimi-bot: enterprises report problems, 一米团 service teams take, work and close them."""

__version__ = "0.1.0"
