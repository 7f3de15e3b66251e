"""The math: initializers, layers (forward/backward pairs), losses, the Network, and gradcheck.

Imports only the floor (errors, backend). Nothing here trains, reads files or prints.
"""
