"""The engine: reusable pieces grouped by concept; nothing here imports the CLI."""
