"""Offline tools for persistent overlays (`pylive overlay create|inspect|resize|merge`).

They read and write the files themselves and need no device-mapper: the persistent snapshot's
on-disk format is read in Python (cowformat.py, pure), so they work on any machine, including one
whose kernel has no dm-snapshot. What touches the system is kept to files.py; each verb's module
plans (pure, unit-tested) and then does.
"""
