"""Steps of the heal_allocations task kept beside it: its writes and its owner check."""
