"""StoreEdge daemon core: config, events, store, runtime, scheduler and the technician CLI."""

__version__ = "0.1.0"
