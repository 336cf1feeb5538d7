# functions-vm.sh -- boot the test guest of tests/tools/vm-guest.sh under QEMU.  Source after
# functions.sh.  docs/vm-boot.md says what was measured and why the choices below.
#
#   vm_requires                 skip (77) when QEMU cannot run at all here
#   G=$(vm_guest)               the guest's directory (built once, cached under build/vm-guest)
#   vm_boot LOG SOCK MODE       boot it with its root disk on the NBD server at unix socket SOCK,
#                               /sbin/init in MODE (write, check, none); the serial console goes
#                               to LOG; fails the test when QEMU fails or runs past VM_TIMEOUT
#                               seconds (default 100)

vm_requires() {
    requires qemu-system-x86_64
    # Can QEMU start a machine at all (TCG needs nothing from the host)?
    printf 'quit\n' | timeout 20 qemu-system-x86_64 -M none -accel tcg -nodefaults -no-user-config \
        -display none -monitor stdio >/dev/null 2>&1 ||
        skip "qemu-system-x86_64 cannot start a machine here (tried -M none -accel tcg)"
}

vm_guest() {
    "$TOP/tests/tools/vm-guest.sh" "$TOP/build/vm-guest" || die "cannot build the test guest (tests/tools/vm-guest.sh)"
}

# KVM only where it can help: /dev/kvm writable and the CPU doing hardware virtualisation
# (a software-nested /dev/kvm without vmx/svm fails or crawls; TCG is the safe default).
vm_accel() {
    if [ -w /dev/kvm ] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then
        echo "-accel kvm -cpu host"
    else
        echo "-accel tcg -cpu max"
    fi
}

vm_boot() {
    _log=$1 _sock=$2 _mode=$3
    # shellcheck disable=SC2046
    timeout "${VM_TIMEOUT:-100}" qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
        $(vm_accel) -m 256 -smp 1 -kernel "$G/vmlinux" -initrd "$G/initramfs.img" \
        -append "console=ttyS0 root=/dev/vda rw panic=-1 quiet snaptest=$_mode" \
        -drive "if=virtio,format=raw,discard=unmap,file=nbd+unix:///?socket=$_sock" \
        -serial stdio </dev/null >"$_log" 2>&1 ||
        { tail -30 "$_log" >&2; die "QEMU failed or timed out (see above), mode $_mode"; }
}
