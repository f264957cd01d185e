//! The start rate: a token bucket, refilled continuously.
//!
//! A rate of `starts` per `per` nanoseconds is a bucket of `starts` tokens
//! that starts full and refills continuously at that rate, never above
//! full: a token every `per / starts` nanoseconds, exactly (fractions of a
//! token accrue and count once whole). Each start takes one whole token.
//! So a backlog starts `starts` items at once, then one every
//! `per / starts`, and over any span of `w` nanoseconds at most
//! `starts + ⌊w × starts / per⌋` items start.
//!
//! The arithmetic is exact, in integers: the bucket holds *credit*, in
//! units of `1 / per` of a token, so `w` nanoseconds add `w × starts` units
//! and a token costs `per` of them (`u128`: no overflow for any `u32`
//! starts and `u64` span).

use std::num::{NonZeroU32, NonZeroU64};

/// A token bucket on the caller's clock.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket {
    /// Tokens added per `per` nanoseconds, and the bucket's size.
    starts: u128,
    /// Nanoseconds in which `starts` tokens are added; a token's credit.
    per: u128,
    /// Credit at `at`: `credit / per` whole tokens.
    credit: u128,
    /// When `credit` was last brought up to date.
    at: u64,
}

impl Bucket {
    /// A full bucket of `starts` tokens, refilled at `starts` per `per`
    /// nanoseconds from `now` on.
    pub(super) fn new(starts: NonZeroU32, per: NonZeroU64, now: u64) -> Bucket {
        let starts = u128::from(starts.get());
        let per = u128::from(per.get());
        Bucket {
            starts,
            per,
            credit: starts * per,
            at: now,
        }
    }

    /// The credit at `now` (no earlier than the last update).
    fn credit_at(&self, now: u64) -> u128 {
        let elapsed = u128::from(now.saturating_sub(self.at));
        (self.credit + elapsed * self.starts).min(self.starts * self.per)
    }

    /// Whole tokens in the bucket at `now`.
    pub(super) fn tokens(&self, now: u64) -> u128 {
        self.credit_at(now) / self.per
    }

    /// Takes a token at `now`, if there is one.
    pub(super) fn take(&mut self, now: u64) -> bool {
        let credit = self.credit_at(now);
        self.at = self.at.max(now);
        self.credit = credit;
        if credit < self.per {
            return false;
        }
        self.credit -= self.per;
        true
    }

    /// The first instant, no earlier than `now`, at which a whole token is
    /// in the bucket.
    pub(super) fn next_token_at(&self, now: u64) -> u64 {
        let credit = self.credit_at(now);
        if credit >= self.per {
            return now;
        }
        let wait = (self.per - credit).div_ceil(self.starts);
        // A wait of at most `per` nanoseconds: it fits the `u64` it came from.
        now.saturating_add(u64::try_from(wait).expect("a wait is at most `per`"))
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;

    fn bucket(starts: u32, per: u64) -> Bucket {
        Bucket::new(
            NonZeroU32::new(starts).unwrap(),
            NonZeroU64::new(per).unwrap(),
            0,
        )
    }

    /// Full at first, then a token every `per / starts`, never above full.
    #[test]
    fn a_bucket_bursts_then_refills_at_its_rate_up_to_full() {
        let mut bucket = bucket(10, 100);
        assert_eq!(bucket.tokens(0), 10);
        for _ in 0..10 {
            assert!(bucket.take(0));
        }
        assert!(!bucket.take(0));
        assert_eq!(bucket.next_token_at(0), 10);
        assert!(!bucket.take(9));
        assert_eq!(bucket.next_token_at(9), 10);
        assert!(bucket.take(10));
        assert!(!bucket.take(10));
        assert_eq!(bucket.tokens(1_000_000), 10, "full, not more");
    }

    /// A rate that does not divide evenly accrues fractions exactly: 3 per
    /// 10 ns is a token at 4, 7 and 10 ns (⌈10/3⌉, ⌈20/3⌉, 30/3).
    #[test]
    fn fractions_of_a_token_accrue() {
        let mut bucket = bucket(3, 10);
        for _ in 0..3 {
            assert!(bucket.take(0));
        }
        let mut starts = Vec::new();
        let mut now = 0;
        while starts.len() < 6 {
            now = bucket.next_token_at(now);
            assert!(bucket.take(now));
            starts.push(now);
        }
        assert_eq!(starts, [4, 7, 10, 14, 17, 20]);
    }
}
