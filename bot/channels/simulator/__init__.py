"""Local stand-ins for Telegram: a fake Bot API server for tests, benchmarks and the simulator."""
