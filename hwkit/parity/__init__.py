"""Do the backends agree: tolerance profiles, output metrics, ``check()`` and ``bisect()``.

Owns: ``Tolerance`` and the profiles (``tolerance``), per-output metrics (``agreement``), the
check scenario (``check``) and the search for the first diverging node (``bisect``).

May import: ``hwkit.runner``, ``hwkit.api``, ``hwkit.plugins``, ``hwkit.backend``,
``hwkit.model``, ``hwkit.report``, ``hwkit._files``, ``hwkit.system``, ``hwkit.errors``.
Never ``hwkit.measure``: agreeing is not measuring.
"""
