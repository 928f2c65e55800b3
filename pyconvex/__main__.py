"""``python -m pyconvex``: the same as the ``pyconvex`` command."""

from pyconvex.cli.main import app

if __name__ == "__main__":
    app(prog_name="pyconvex")
