"""Side-by-side benchmarks against nova-manage on test bed data."""
