//! What both objects (the main programs and `--stacks`' own) hold alike:
//! the load-time globals they read (the kernel's field offsets, and
//! switches), their licence and their panic handler.

use zombie_trace_common::Offsets;

/// Field offsets of the running kernel, set by the loader before loading.
#[unsafe(no_mangle)]
static OFFSETS: Offsets = Offsets::UNSET;

/// Whether the loader set a load-time switch (a `u32` global) to 1.
#[inline(always)]
pub fn is_set(switch: &'static u32) -> bool {
    *opaque(switch) != 0
}

/// The offsets. The loader rewrites the zeros above, so the compiler must
/// not fold them into the code: the address is read back volatile, which
/// hides what it points to, and only the fields used are then loaded (a
/// volatile copy of the whole struct costs every program a load and a
/// store per field).
#[inline(always)]
pub fn offsets() -> &'static Offsets {
    opaque(&OFFSETS)
}

/// `global`, behind an address the compiler cannot see through.
#[inline(always)]
pub fn opaque<T>(global: &'static T) -> &'static T {
    let address: *const T = global;
    // SAFETY: a volatile read of a local; the address it returns is that
    // of a static, valid for the whole program.
    unsafe { &*core::ptr::read_volatile(&address) }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
