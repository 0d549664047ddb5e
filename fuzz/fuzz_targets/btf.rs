//! The kernel's BTF, as kernel::btf reads it in place: any bytes give an
//! error or answers, and the BTF made for aya gives aya the ids found here.

#![no_main]

use aya_obj::btf::BtfKind;
use libfuzzer_sys::fuzz_target;
use zombie_trace::kernel::{
    btf::{Btf, Kind},
    offsets,
};

/// Short names, so that small inputs can hold them.
const NAMES: [&str; 4] = ["", "a", "s", "pid"];

fuzz_target!(|bytes: &[u8]| {
    let Ok(btf) = Btf::parse(bytes) else {
        return;
    };
    let _ = offsets::from_btf(&btf);
    let _ = offsets::regs_args(&btf);
    for name in NAMES {
        if let Some(st) = btf.find_struct(name) {
            st.size();
            for field in NAMES {
                let _ = btf.member_offset(&st, field);
            }
        }
        for enumerator in NAMES {
            btf.has_enumerator(name, enumerator);
        }
    }
    let wanted = [("a", Kind::Typedef), ("s", Kind::Func), ("", Kind::Func)];
    let ids = btf.ids_by_name(&wanted);
    let aya = btf
        .aya_btf(&wanted)
        .expect("aya parses the BTF made for it");
    for (&(name, kind), id) in wanted.iter().zip(ids) {
        let kind = match kind {
            Kind::Typedef => BtfKind::Typedef,
            Kind::Func => BtfKind::Func,
        };
        assert_eq!(aya.id_by_type_name_kind(name, kind).ok(), id, "{name}");
    }
});
