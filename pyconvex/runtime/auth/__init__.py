"""Who is calling: the admin key, :class:`~.identity.UserIdentity`, and callers (admin or
user, acting as someone).

A leaf: may import only ``pyconvex.values`` and ``pyconvex.errors``, so every layer can use it.
"""
