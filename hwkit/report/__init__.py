"""What people read: the result schemas and every view of them.

Owns: the schema names and result-file loading (``schema``), number formatting (``format``),
the rich tables (``tables``), CSV and Markdown (``files``), PNG plots (``plot``) and the diff of
two saved results (``diff``). Views render the documented result dicts (``hwkit.bench/2``,
``hwkit.check/1``, ``hwkit.bisect/1``), never live objects, so a result just measured and one
read back from a file go through one path.

May import: ``hwkit._files``, ``hwkit.errors`` (and rich, matplotlib, jsonschema). Nothing that
measures.
"""
