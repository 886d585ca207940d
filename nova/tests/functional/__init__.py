# Real QEMU runs in the test process: route libvirt's log as the commands
# do, before anything imports libvirt.
import nova.cmd  # noqa: F401
