"""Running jobs: the executor interface, local worker processes, the Ray executor, the event broker."""
