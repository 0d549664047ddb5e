//! The kernel side as userspace sees it: the checks and the choice of
//! programs (`load`), loading and attaching them (`programs`), the field
//! offsets they are given (`offsets`) out of the kernel's BTF read in
//! place (`btf`), typed access to their maps, the records they send
//! (`decode`), the privileges dropped once attached, and the kernel's
//! boot-time clock.

pub mod btf;
pub mod clock;
pub mod decode;
pub mod load;
pub mod maps;
pub mod offsets;
pub mod privileges;
pub mod programs;
pub mod stacks;
