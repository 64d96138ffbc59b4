"""The floor for `make bench`: a hello world compiled with pylive's Nuitka flags (what any binary costs)."""

print("hello")
