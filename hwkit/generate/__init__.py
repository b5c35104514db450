"""Generation with decoder LLMs: prefill, then one step per new token with a KV cache.

Owns the model convention (inputs, outputs, cache names), the greedy loop, its measurement and
its token-by-token comparison. May import ``hwkit.measure`` and everything below it.
"""
