"""Configuration: one TOML file validated by pydantic models (``models``), loaded by ``loader``."""
