"""The HQ reference receiver: consumes every store's aggregates, de-duplicates on (store, seq), tracks stores."""
