"""``pyconvex dev``'s loop: watch ``convex/``, reload what changed, push the schema,
regenerate ``_generated/``, swap the code in and re-run subscriptions.

May import the runtime, codegen and ``pyconvex.project``; the CLI is a thin adapter over it.
"""
