"""Infrastructure the controllers run on: the object store, per-key locks, the requeue scheduler."""
