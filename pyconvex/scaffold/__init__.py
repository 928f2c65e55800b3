"""``pyconvex init``: new projects rendered from the jinja2 templates in ``pyconvex/templates/``.

from pyconvex.scaffold import create_project, render_template

files = render_template("chat", Path("myapp"), {"project_name": "myapp"})
project = create_project(Path("myapp"), "tasks")   # render + codegen
"""

from pyconvex.scaffold.create import InitResult, create_project
from pyconvex.scaffold.template_dir import (
    DEFAULT_TEMPLATE,
    ScaffoldError,
    TemplateExistsError,
    planned_files,
    render_template,
    template_names,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "InitResult",
    "ScaffoldError",
    "TemplateExistsError",
    "create_project",
    "planned_files",
    "render_template",
    "template_names",
]
