"""Generation with decoder LLMs: prefill, then one step per new token with a KV cache.

Owns the model convention (``convention``: inputs, outputs, cache names, read from the graph),
the step sessions (``session``: the backend's own through ``hwkit.backend.Stepper``, else the
generic numpy one), the greedy loop and its job functions (``loop``), the settings, records and
views of ``bench --generate`` (``settings``, ``records``, ``views``, ``bench``) and the
token-by-token comparison of ``check --generate`` (``compare``). docs/generation.md.
May import ``hwkit.measure`` and everything below it.
"""
