"""`pylive update-boot`: carry a kernel update made inside a persistent live system to the stick's boot
files (README, "Kernel updates on a persistent stick").

- version.py: the order of kernel versions (as rpm compares them; dpkg agrees on kernel versions);
- kernels.py: the newest kernel and its initramfs in the live root (reads a tree);
- loaderconf.py: the kernel and initrd files the stick's boot loader configurations name (reads a tree);
- plan.py: what to write where, the room it needs, the one line for each refusal (pure);
- apply.py: the files written, synced and renamed into place, and the command's glue.
"""
