//! A thread's total time spent runnable but waiting for a CPU, from Linux's
//! `/proc/thread-self/schedstat`, with the last reading cached per thread.
//! Elsewhere it is never known. The reasoning is in the parent module.

pub(super) use imp::{read_now, waited};

#[cfg(target_os = "linux")]
mod imp {
    use std::cell::{Cell, RefCell};
    use std::fs::File;
    use std::os::unix::fs::FileExt;

    /// This thread's last reading.
    #[derive(Clone, Copy)]
    struct Reading {
        /// When it was taken, as `coarsetime` ticks: 0 before the first,
        /// [`UNAVAILABLE`] once one failed.
        at: u64,
        /// The thread's total wait for a CPU then, in ns; `None` if the
        /// reading failed.
        waited: Option<u64>,
    }

    /// A reading failed on this thread: it never tries again. As `at`, it
    /// is never older than any `max_age` (at least 1).
    const UNAVAILABLE: u64 = u64::MAX;

    thread_local! {
        static LAST: Cell<Reading> = const { Cell::new(Reading { at: 0, waited: None }) };
        static SCHEDSTAT: RefCell<Option<File>> = const { RefCell::new(None) };
    }

    /// This thread's total wait for a CPU (ns), as of at most `max_age`
    /// ticks (at least 1) before `now`: the cached reading, or a new one
    /// if that is older. `None` where it cannot be read.
    #[inline]
    pub(in crate::slow_poll) fn waited(now: u64, max_age: u64) -> Option<u64> {
        debug_assert!(max_age >= 1, "else an unavailable reading is retried");
        let last = LAST.get();
        if now.saturating_sub(last.at) < max_age {
            return last.waited;
        }
        read_now(now)
    }

    /// Reads this thread's total wait for a CPU (ns) now, and caches it as
    /// taken at `now`.
    #[cold]
    #[inline(never)]
    pub(in crate::slow_poll) fn read_now(now: u64) -> Option<u64> {
        // `try_with`: `None` while the thread's locals are being destroyed.
        let waited = SCHEDSTAT
            .try_with(|file| read(&mut file.borrow_mut()))
            .ok()
            .flatten();
        let at = if waited.is_some() { now } else { UNAVAILABLE };
        LAST.set(Reading { at, waited });
        waited
    }

    /// Opens this thread's `schedstat` on first use (the path names the
    /// thread that opens it), and reads it again from the start.
    fn read(file: &mut Option<File>) -> Option<u64> {
        if file.is_none() {
            *file = Some(File::open("/proc/thread-self/schedstat").ok()?);
        }
        let mut buf = [0u8; 80]; // three u64s and two spaces
        let len = file.as_ref()?.read_at(&mut buf, 0).ok()?;
        parse(&buf[..len])
    }

    /// `schedstat` is `"<ns on a CPU> <ns waiting for one> <times it got
    /// a CPU>\n"`: the second. `None` if malformed, or if the third is 0: a
    /// kernel without `CONFIG_SCHED_INFO` reports zeros, and a thread
    /// reading its own has got a CPU at least once. (The first may well be
    /// 0: it is brought up to date only when the thread is descheduled or
    /// at a tick. The second is complete: a wait is added when it ends.)
    pub(super) fn parse(text: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(text).ok()?;
        let mut fields = text.split_ascii_whitespace().map(str::parse::<u64>);
        let _on_cpu = fields.next()?.ok()?;
        let waiting = fields.next()?.ok()?;
        let got_a_cpu = fields.next()?.ok()?;
        (got_a_cpu > 0).then_some(waiting)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    #[inline]
    pub(in crate::slow_poll) fn waited(_now: u64, _max_age: u64) -> Option<u64> {
        None
    }

    pub(in crate::slow_poll) fn read_now(_now: u64) -> Option<u64> {
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::imp::parse;

    #[test]
    fn parses_the_wait_and_refuses_zeros_and_garbage() {
        assert_eq!(parse(b"90349 2231526 2\n"), Some(2231526));
        assert_eq!(parse(b"0 65212 1\n"), Some(65212)); // a new thread
        assert_eq!(parse(b"0 0 0\n"), None);
        assert_eq!(parse(b"12 x 3\n"), None);
        assert_eq!(parse(b"12 34"), None);
        assert_eq!(parse(b""), None);
    }

    /// The cached reading is reused while young, and a new one taken once
    /// it is older than `max_age`.
    #[test]
    fn a_reading_is_reused_while_young() {
        let Some(first) = super::read_now(1_000) else {
            return; // no schedstat here: nothing to cache
        };
        assert_eq!(super::waited(1_000 + 9, 10), Some(first));
        let later = super::waited(1_000 + 10, 10).expect("it was readable");
        assert!(later >= first);
    }
}
