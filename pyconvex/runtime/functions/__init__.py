"""Loading and running user code: the deployment.

Owns the module loader (:mod:`.loader`), the determinism sandbox (:mod:`.sandbox`: frozen
time, seeded randomness, no I/O), the ctx objects (:mod:`.ctx_impl`), function paths, results,
execution logs, environment variables, schema pushes (:mod:`.schema_push`) and
:class:`~.deployment.Deployment`, the engine's face to the server and to tests.

May import: :mod:`pyconvex.runtime.store`, :mod:`pyconvex.runtime.query`,
:mod:`pyconvex.runtime.auth`, ``pyconvex.server``, ``pyconvex.values``, ``pyconvex.errors``.
Never the network layer.
"""
