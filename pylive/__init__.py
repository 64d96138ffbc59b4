"""pylive: the live-media boot stage for dracut initramfs images."""

__version__ = "0.1.0"
