"""The local results database: saved runs, their history and the previous run to compare with.

Owns the SQLite file and its schema migrations (``database``), what is indexed of a result dict
(``rows``: the machine key, one row per measurement), and saving and finding runs (``runs``:
save, history, one run, the run before another, a trend). May import ``hwkit.model``,
``hwkit.report`` and below (``_files``, ``system``, ``errors``); it stores result dicts, never
live objects.
"""
