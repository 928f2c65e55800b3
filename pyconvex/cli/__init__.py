"""The ``pyconvex`` command line: one small module per command (parse options, call one library
function, render, map errors to exit codes); :mod:`~pyconvex.cli.main` assembles them."""
