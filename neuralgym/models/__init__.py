"""The networks of a world model, one per file, each with its config dataclass above it."""
