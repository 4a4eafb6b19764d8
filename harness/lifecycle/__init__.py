"""An adapter's life after the sweep: promotion through a gate and rollback (the registry), serving export, the
audit pack, and re-checks of the production adapter on fresh data."""
