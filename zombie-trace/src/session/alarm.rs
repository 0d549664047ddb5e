//! The event loop's one timer: a `timerfd` set to the sooner of the next
//! tick and the next child due. An idle tracer then wakes once a tick.
//! tokio's timers cost more here: a sleep 100 ms out sits in the second
//! level of its timer wheel and wakes the thread once to move it down and
//! once to fire, and the tick and the due timer were two such sleeps, so
//! about 30 wakeups a second where 10 do.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

use tokio::io::{Interest, unix::AsyncFd};

pub struct Alarm {
    fd: AsyncFd<OwnedFd>,
}

impl Alarm {
    /// A disarmed alarm on the monotonic clock (tokio's too). Needs a
    /// tokio runtime with I/O enabled.
    pub fn new() -> io::Result<Self> {
        // SAFETY: no pointers; the flags are valid.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor just made and owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the AsyncFd owns the descriptor, so it stays open and the
        // same for as long as the AsyncFd.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Self { fd })
    }

    /// Rings once, `after` from now (at least a nanosecond, since zero
    /// would disarm it, and at most an hour); replaces any earlier setting.
    pub fn set(&self, after: Duration) -> io::Result<()> {
        let after = after.clamp(Duration::from_nanos(1), Duration::from_secs(3600));
        // Into the fields' types without naming them: the name `time_t` is
        // deprecated on musl.
        let value = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().try_into().unwrap_or(3600),
                tv_nsec: after.subsec_nanos().into(),
            },
        };
        // SAFETY: `value` is a valid itimerspec; the old value is not
        // asked for.
        let set = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                0,
                &raw const value,
                std::ptr::null_mut(),
            )
        };
        if set < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Until it rings.
    pub async fn rung(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            // Would-block clears the readiness, and the loop waits again.
            let Ok(read) = guard.try_io(|fd| {
                let mut expirations = [0u8; 8];
                // SAFETY: reads at most 8 bytes into an 8-byte buffer.
                let n = unsafe {
                    libc::read(
                        fd.as_raw_fd(),
                        expirations.as_mut_ptr().cast(),
                        expirations.len(),
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }) else {
                continue;
            };
            // One read empties a one-shot timerfd: it is not readable
            // again until set again, so no read has to find that out.
            if read.is_ok() {
                guard.clear_ready();
            }
            return read;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn rings_once_after_the_time_set_and_the_last_setting_wins() {
        let alarm = Alarm::new().expect("a timerfd");
        alarm.set(Duration::from_secs(60)).expect("set");
        let started = Instant::now();
        alarm.set(Duration::from_millis(20)).expect("set again");
        alarm.rung().await.expect("rung");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(20), "rang early: {took:?}");
        // Rung and read: not again until set again.
        let again = tokio::time::timeout(Duration::from_millis(50), alarm.rung()).await;
        assert!(again.is_err(), "rang twice for one setting");
        alarm.set(Duration::ZERO).expect("set to now");
        alarm.rung().await.expect("a zero wait still rings");
    }
}
