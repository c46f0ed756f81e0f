"""Floor 0: the config file, the knob catalogue, task specs and the validators of their values."""
