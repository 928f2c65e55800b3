"""Helpers shared by the test suite, importable from any test as ``support.<module>`` (pytest's
``pythonpath`` puts tests/ on ``sys.path``): one module per concern.

- :mod:`support.deployment` — tiny projects, ``ok``/``failure_message``, commit collection;
- :mod:`support.fake_deployment`, :mod:`support.sync_loopback` — the protocol tests' fakes;
- :mod:`support.codegen` — the codegen example project and golden files;
- :mod:`support.cli` — running the command line against a real ``pyconvex dev``;
- :mod:`support.npm` — Node with the pinned official npm client installed.

Real servers are started with :class:`pyconvex.dev.launcher.DevServer`.
"""
