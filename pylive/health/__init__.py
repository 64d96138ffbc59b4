"""Overlay health in the booted live system: how full the writable layer is against what really
limits it (`pylive status`), and a watcher that warns before it overflows (`pylive watch`).

status.py computes a reading from measurements (pure); levels.py decides when to warn (pure);
measure.py reads the running system; notify.py tells the journal, terminals and desktops;
watch.py is the loop; leave.py, run by the boot, leaves the binary and the watcher's unit under
/run for the booted system.
"""
