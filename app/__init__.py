"""Composition root: the `station` command wires configuration, drivers, the line engine and the relay."""
