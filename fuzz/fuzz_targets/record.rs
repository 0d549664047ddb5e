//! A ring-buffer record as the kernel hands it over: any bytes, any length.
//! Decoding must never panic nor read past the end, and a record is decoded
//! only when all of it is there.

#![no_main]

use std::mem::{offset_of, size_of};

use libfuzzer_sys::fuzz_target;
use zombie_trace::{kernel::decode::decode, model::event::Event};
use zombie_trace_common::{
    EXIT_HAS_COMMAND, ExecRecord, ExitCommandRecord, ExitRecord, ReapRecord, WaitRecord,
};

fuzz_target!(|bytes: &[u8]| {
    let Ok(event) = decode(bytes) else {
        return;
    };
    let need = match event {
        // Its flags say whether the command follows.
        Event::Exit(_) => {
            let at = offset_of!(ExitRecord, flags);
            let flags = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
            if flags & EXIT_HAS_COMMAND != 0 {
                size_of::<ExitCommandRecord>()
            } else {
                size_of::<ExitRecord>()
            }
        }
        Event::Release(_) => size_of::<ReapRecord>(),
        Event::Wait(_) => size_of::<WaitRecord>(),
        Event::Exec(_) => size_of::<ExecRecord>(),
    };
    assert!(bytes.len() >= need, "{event:?} from {} bytes", bytes.len());
    assert!(
        decode(&bytes[..need - 1]).is_err(),
        "{event:?} decoded from a truncated record"
    );
    // Bytes past the record (the ring buffer's padding) change nothing.
    assert_eq!(decode(&bytes[..need]), Ok(event));
});
