"""How fast: the bench scenario over the run skeleton.

Owns: ``BenchSettings`` (``settings``), the result records (``records``), the timed loop
(``loop``), statistics (``stats``), the matmul peak (``peak``), FLOP efficiency
(``efficiency``) and ``bench()`` itself (``bench``).

May import: ``hwkit.runner``, ``hwkit.parity`` (tolerances and agreement), ``hwkit.api``,
``hwkit.plugins``, ``hwkit.backend``, ``hwkit.model``, ``hwkit.report``, ``hwkit._files``,
``hwkit.system``, ``hwkit.errors``. Only ``hwkit.cli``, ``hwkit.testing`` and the top-level
``hwkit`` import it.
"""
