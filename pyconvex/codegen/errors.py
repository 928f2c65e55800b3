"""The error codegen raises when the functions directory cannot be turned into modules."""

from __future__ import annotations

from pyconvex.errors import PyconvexError


class CodegenError(PyconvexError):
    """``convex/`` cannot be generated for (the message names the file or function and why).

    Raised for a schema.py that fails to import or does not define ``schema``, and for names
    that clash in ``api`` (a function and a module of the same name).
    """
