"""The run skeleton that bench, check and bisect share.

Owns: the plan (``plan``: which backends run, which one is the reference, by one rule, and the
input sets every backend gets), the launchers (``launch``: where one backend's job runs, in
this process or in a child of its own) and the child side (``_worker``).

May import: ``hwkit.api``, ``hwkit.plugins``, ``hwkit.backend``, ``hwkit.model``,
``hwkit._files``, ``hwkit.errors``. Never a scenario (``hwkit.measure``, ``hwkit.parity``):
a job names its function by dotted path, so the worker imports it only in the child.
"""
