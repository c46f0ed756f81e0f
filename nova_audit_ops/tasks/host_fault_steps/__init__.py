"""Steps of the host_fault task kept beside it, so tasks/host_fault.py stays readable."""
