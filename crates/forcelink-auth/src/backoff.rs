//! [`Backoff`]: when to try again, the one schedule every retry and polling loop of forcelink
//! uses. A [`Backoff`] is the policy (exponential growth from `initial`, a cap, a [`Jitter`], a
//! number of retries and/or an elapsed budget, the longest `Retry-After` honoured); [`Retries`]
//! is one operation's run through it, which waits on the injected [`Clock`] so tests move time
//! instead of sleeping.
//!
//! The default jitter is [`Jitter::Equal`] (a random point in the upper half of the delay), not
//! full jitter: a retry of a throttled or failing request should never come back almost at
//! once, and the upper half still spreads clients enough that they do not retry in lockstep
//! (AWS Architecture Blog, "Exponential Backoff And Jitter").
//!
//! `Retry-After` (RFC 9110 §10.2.3, delta seconds or an HTTP date) is a floor: the wait is the
//! longer of it and the backoff. One longer than [`Backoff::max_retry_after`] ends the operation
//! ([`GiveUp::RetryAfterTooLong`]) instead of holding it for minutes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::clock::Clock;

/// First delay of [`Backoff::default`], doubled after each retry. 500 ms.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(500);
/// Longest delay of [`Backoff::default`] between two attempts. 30 seconds.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
/// Retries after the first attempt of [`Backoff::default`]. 3.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Longest `Retry-After` honoured by [`Backoff::default`]; a longer one gives up. 2 minutes.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How a delay is randomised so that many clients do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// The delay as computed: for schedules that are not shared between clients (polling one's
    /// own job, remembering a failure).
    None,
    /// A random point between half the delay and the delay ("equal jitter"). The default.
    #[default]
    Equal,
    /// A random point between zero and the delay ("full jitter"): the widest spread, but a
    /// retry may come back at once.
    Full,
    /// The delay plus a random extra of up to `percent` percent of it: never shorter than the
    /// delay (waiting for another holder's work to finish).
    Extra {
        /// The largest extra, in percent of the delay.
        percent: u32,
    },
}

/// A retry schedule: `initial × 2^retry`, capped at `max_delay`, randomised by `jitter`; at most
/// `max_retries` retries and, when set, no waiting past `budget` after the start. Cheap to copy;
/// start one run with [`Backoff::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter). Defaults to [`DEFAULT_INITIAL_DELAY`].
    pub initial: Duration,
    /// Longest delay (before jitter). Defaults to [`DEFAULT_MAX_DELAY`].
    pub max_delay: Duration,
    /// How delays are randomised. Defaults to [`Jitter::Equal`].
    pub jitter: Jitter,
    /// Retries after the first attempt; `None` for no limit. Defaults to
    /// `Some(`[`DEFAULT_MAX_RETRIES`]`)`.
    pub max_retries: Option<u32>,
    /// Longest time from the start of the run after which no further wait begins; the last wait
    /// is shortened to end at the budget. `None` (the default) for no budget.
    pub budget: Option<Duration>,
    /// Longest `Retry-After` honoured; a longer one gives up. Defaults to
    /// [`DEFAULT_MAX_RETRY_AFTER`].
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::exponential(DEFAULT_INITIAL_DELAY, DEFAULT_MAX_DELAY)
    }
}

impl Backoff {
    /// Doubling from `initial` up to `max_delay`, every other setting at its default.
    pub const fn exponential(initial: Duration, max_delay: Duration) -> Self {
        Self {
            initial,
            max_delay,
            jitter: Jitter::Equal,
            max_retries: Some(DEFAULT_MAX_RETRIES),
            budget: None,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }

    /// No retries at all.
    pub fn none() -> Self {
        Self { max_retries: Some(0), ..Self::default() }
    }

    /// The delay before retry number `retry` (0-based) without jitter: `initial × 2^retry`,
    /// capped at `max_delay`.
    pub fn base_delay(&self, retry: u32) -> Duration {
        self.initial.saturating_mul(2u32.saturating_pow(retry)).min(self.max_delay)
    }

    /// The delay before retry number `retry` (0-based), jitter applied.
    pub fn delay(&self, retry: u32) -> Duration {
        let base = self.base_delay(retry);
        let random_up_to = |d: Duration| {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            if ms == 0 { Duration::ZERO } else { Duration::from_millis(rand::thread_rng().gen_range(0..=ms)) }
        };
        match self.jitter {
            Jitter::None => base,
            Jitter::Equal => {
                let half = base / 2;
                half + random_up_to(base - half)
            }
            Jitter::Full => random_up_to(base),
            Jitter::Extra { percent } => {
                let extra_ms = base.as_millis().saturating_mul(u128::from(percent)) / 100;
                base.saturating_add(random_up_to(Duration::from_millis(u64::try_from(extra_ms).unwrap_or(u64::MAX))))
            }
        }
    }

    /// Starts one run of this schedule; its budget counts from now on `clock`.
    pub fn start(&self, clock: Arc<dyn Clock>) -> Retries {
        let started = clock.now();
        Retries { backoff: *self, clock, started, retries: 0 }
    }
}

/// Why a [`Retries`] run gives up instead of waiting again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GiveUp {
    /// Every allowed retry was used.
    #[error("gave up after {retries} retries")]
    RetriesExhausted {
        /// Retries made.
        retries: u32,
    },
    /// The elapsed budget is spent.
    #[error("gave up after {} s", elapsed.as_secs())]
    BudgetSpent {
        /// Time since the run started.
        elapsed: Duration,
    },
    /// The server asked to wait longer than allowed ([`Backoff::max_retry_after`], or what is
    /// left of the budget).
    #[error("asked to retry after {} s, more than the allowed {} s", asked.as_secs(), max.as_secs())]
    RetryAfterTooLong {
        /// What `Retry-After` asked for.
        asked: Duration,
        /// The longest wait allowed.
        max: Duration,
    },
}

/// One operation's run through a [`Backoff`]: counts retries and the time spent, and waits on
/// the clock it was started with.
pub struct Retries {
    backoff: Backoff,
    clock: Arc<dyn Clock>,
    started: SystemTime,
    retries: u32,
}

impl fmt::Debug for Retries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retries").field("backoff", &self.backoff).field("retries", &self.retries).finish()
    }
}

impl Retries {
    /// Retries granted so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Time since the run started, on its clock.
    pub fn elapsed(&self) -> Duration {
        self.clock.now().duration_since(self.started).unwrap_or_default()
    }

    /// Reads a `Retry-After` header value against this run's clock (see [`parse_retry_after`]).
    pub fn retry_after(&self, value: &str) -> Option<Duration> {
        parse_retry_after(value, self.clock.now())
    }

    /// Grants the next retry and says how long to wait before it: the backoff, at least
    /// `retry_after` when the server sent one, never past the budget. Gives up when the retries
    /// or the budget are used up, or `retry_after` is longer than allowed.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Result<Duration, GiveUp> {
        let b = &self.backoff;
        if b.max_retries.is_some_and(|max| self.retries >= max) {
            return Err(GiveUp::RetriesExhausted { retries: self.retries });
        }
        let remaining = match b.budget {
            None => Duration::MAX,
            Some(budget) => {
                let elapsed = self.elapsed();
                if elapsed >= budget {
                    return Err(GiveUp::BudgetSpent { elapsed });
                }
                budget - elapsed
            }
        };
        let mut wait = b.delay(self.retries);
        if let Some(asked) = retry_after {
            let max = b.max_retry_after.min(remaining);
            if asked > max {
                return Err(GiveUp::RetryAfterTooLong { asked, max });
            }
            wait = wait.max(asked);
        }
        self.retries += 1;
        Ok(wait.min(remaining))
    }

    /// [`Retries::next_delay`], then waits that long on the clock. Returns the time waited.
    pub async fn wait(&mut self, retry_after: Option<Duration>) -> Result<Duration, GiveUp> {
        let wait = self.next_delay(retry_after)?;
        self.clock.sleep(wait).await;
        Ok(wait)
    }
}

/// Reads `Retry-After`: delta seconds, or an HTTP date compared with `now` (a date in the past
/// is no wait). `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn clock() -> (ManualClock, Arc<dyn Clock>) {
        let c = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        (c.clone(), Arc::new(c))
    }

    #[test]
    fn equal_jitter_stays_in_the_upper_half_and_doubles_to_the_cap() {
        let b = Backoff::default();
        for retry in 0..12 {
            let full = (b.initial * (1 << retry)).min(b.max_delay);
            for _ in 0..50 {
                let d = b.delay(retry);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?} outside {:?}..={full:?}", full / 2);
            }
        }
    }

    #[test]
    fn full_jitter_stays_below_the_delay_and_extra_jitter_above_it() {
        let full =
            Backoff { jitter: Jitter::Full, ..Backoff::exponential(Duration::from_secs(1), Duration::from_secs(8)) };
        let extra = Backoff { jitter: Jitter::Extra { percent: 25 }, ..full };
        for retry in 0..6 {
            let base = full.base_delay(retry);
            for _ in 0..50 {
                assert!(full.delay(retry) <= base);
                let e = extra.delay(retry);
                assert!(e >= base && e <= base + base / 4, "retry {retry}: {e:?}");
            }
        }
    }

    #[test]
    fn delays_never_pass_the_cap() {
        let b =
            Backoff { jitter: Jitter::None, ..Backoff::exponential(Duration::from_secs(30), Duration::from_secs(900)) };
        let delays: Vec<u64> = (0..8).map(|r| b.delay(r).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(900));
    }

    #[tokio::test]
    async fn waits_move_the_injected_clock_and_stop_at_the_retry_limit() {
        let (manual, clock) = clock();
        let start = manual.now();
        let b = Backoff { jitter: Jitter::None, ..Backoff::default() };
        let mut run = b.start(clock);
        for expected in [500, 1000, 2000] {
            assert_eq!(run.wait(None).await, Ok(Duration::from_millis(expected)));
        }
        assert_eq!(run.wait(None).await, Err(GiveUp::RetriesExhausted { retries: 3 }));
        assert_eq!(manual.now().duration_since(start).unwrap(), Duration::from_millis(3500));
        assert_eq!(
            Backoff::none().start(Arc::new(manual)).next_delay(None),
            Err(GiveUp::RetriesExhausted { retries: 0 })
        );
    }

    #[tokio::test]
    async fn retry_after_wins_over_a_shorter_backoff_but_not_a_longer_one() {
        let (_, clock) = clock();
        let b =
            Backoff { jitter: Jitter::None, ..Backoff::exponential(Duration::from_secs(2), Duration::from_secs(30)) };
        let mut run = b.start(clock);
        assert_eq!(run.wait(Some(Duration::from_secs(7))).await, Ok(Duration::from_secs(7)));
        // The backoff is 4 s now: a shorter Retry-After does not shorten it.
        assert_eq!(run.wait(Some(Duration::from_secs(1))).await, Ok(Duration::from_secs(4)));
    }

    #[test]
    fn a_retry_after_longer_than_allowed_gives_up() {
        let (_, clock) = clock();
        let mut run = Backoff::default().start(clock);
        let asked = DEFAULT_MAX_RETRY_AFTER + Duration::from_secs(1);
        assert_eq!(run.next_delay(Some(asked)), Err(GiveUp::RetryAfterTooLong { asked, max: DEFAULT_MAX_RETRY_AFTER }));
        assert_eq!(run.retries(), 0);
        assert!(run.next_delay(Some(DEFAULT_MAX_RETRY_AFTER)).is_ok());
    }

    #[tokio::test]
    async fn the_budget_shortens_the_last_wait_and_then_gives_up() {
        let (_, clock) = clock();
        let b = Backoff {
            jitter: Jitter::None,
            max_retries: None,
            budget: Some(Duration::from_secs(10)),
            ..Backoff::exponential(Duration::from_secs(4), Duration::from_secs(60))
        };
        let mut run = b.start(clock);
        assert_eq!(run.wait(None).await, Ok(Duration::from_secs(4)));
        assert_eq!(run.wait(None).await, Ok(Duration::from_secs(6)));
        assert_eq!(run.wait(None).await, Err(GiveUp::BudgetSpent { elapsed: Duration::from_secs(10) }));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
