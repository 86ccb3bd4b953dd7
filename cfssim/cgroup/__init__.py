"""cgroups: file semantics (files), hierarchy (tree), CPU bandwidth, memory controller."""
