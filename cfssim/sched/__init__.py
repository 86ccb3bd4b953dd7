"""The fair scheduling class: weights, entities, run queues, policies (CFS, EEVDF) and balancing."""
