"""commands — one module per command group; each exposes ``register(app)`` or a sub-``Typer``."""
