"""The local results database: saved runs, their history and the previous run to compare with.

Owns the SQLite file and its schema migrations. May import ``hwkit.model``, ``hwkit.report``
and below (``_files``, ``system``, ``errors``); it stores result dicts, never live objects.
"""
