"""The line: what happens to each item between the printer (or the roll) and the outbox, on one thread per line."""
