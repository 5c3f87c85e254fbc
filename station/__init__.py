"""Domain and workflow of the packing-line station: no Qt, no device I/O."""
