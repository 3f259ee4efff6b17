"""Session-scoped simulated EBs (filled in by the simulator work)."""
