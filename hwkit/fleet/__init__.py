"""More than one machine: merging results from machines that ran separately, and benches
scheduled across a Ray cluster (the optional extra ``hwkit[ray]``).

May import ``hwkit.generate``, ``hwkit.measure`` and everything below; only ``hwkit.cli``
and ``hwkit.testing`` sit above it. Ray is imported lazily, inside the functions that need it.
"""
