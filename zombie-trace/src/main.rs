use std::time::Duration;
use zombie_trace::{decode, loader};
fn main() -> anyhow::Result<()> {
    env_logger::init();
    let mut t = loader::load(&loader::Options { ring_bytes: 1 << 22 })?;
    eprintln!("wait tracing: {} {:?}", t.wait_tracing, t.wait_tracing_error);
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < end {
        while let Some(item) = t.events.next() {
            println!("{:?}", decode::decode(&item));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("counters {:?}", t.counters());
    Ok(())
}
