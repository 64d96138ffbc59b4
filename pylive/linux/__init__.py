"""The thin kernel layer: loop, device-mapper and mount(2) through ioctls and libc."""
