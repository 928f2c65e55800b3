"""``pyconvex codegen``: typed modules for the functions directory, built with libcst.

    from pyconvex.codegen import generate

    changed = generate(Path("convex"))   # the files of convex/_generated/ that changed

writes ``data_model.py`` (a TypedDict per table), ``server.py`` (decorators and ctx types bound
to the schema), ``api.py`` (typed ``api`` / ``internal`` references), and ``api.js``,
``api.d.ts`` and ``dataModel.d.ts`` (``Doc``, ``Id``, ``DataModel``) for JavaScript and
TypeScript frontends. The dev loop runs the two halves itself:
:func:`generate_schema_modules` before it imports the functions, :func:`generate_api_modules`
after.
"""

from pyconvex.codegen.errors import CodegenError
from pyconvex.codegen.generate import (
    GENERATED_DIR,
    generate,
    generate_api_modules,
    generate_schema_modules,
)

__all__ = [
    "GENERATED_DIR",
    "CodegenError",
    "generate",
    "generate_api_modules",
    "generate_schema_modules",
]
