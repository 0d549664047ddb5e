//! The kernel side as userspace sees it: the checks, loading and attaching
//! of the programs (`load`), the field offsets they are given (`offsets`),
//! typed access to their maps, the records they send (`decode`), the
//! privileges dropped once attached, and the kernel's boot-time clock.

pub mod clock;
pub mod decode;
pub mod load;
pub mod maps;
pub mod offsets;
pub mod privileges;
