//! Collection statistics and callbacks: Python's `gc.get_stats()` and
//! `gc.callbacks`.
//!
//! The collector ([`crate::collect()`]) fills a [`CollectStats`] for every
//! collection and hands it to the callbacks registered on this thread with
//! [`add_collect_callback`](crate::add_collect_callback). Per-type counts are only computed when someone
//! can see them: [`collect_with_stats`](crate::collect_with_stats) asks for them, and so does a
//! registered callback. A plain [`collect`](crate::collect()) with no callback
//! pays for a look at the empty callback list and at most two coarse clock
//! reads (see [`Stopwatch`]).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

/// What one collection did ([`collect_with_stats`](crate::collect_with_stats), and what collection
/// callbacks receive).
///
/// ```
/// use rcycle::{Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Pair { other: RefCell<Option<Gc<Pair>>> }
///
/// rcycle::collect(); // start from an empty candidate buffer
/// let a = Gc::new(Pair { other: RefCell::new(None) });
/// let b = Gc::new(Pair { other: RefCell::new(Some(a.clone())) });
/// *a.other.borrow_mut() = Some(b);
/// drop(a);
/// let stats = rcycle::collect_with_stats();
/// assert_eq!((stats.freed, stats.resurrected, stats.examined), (2, 0, 2));
/// assert!(stats.freed_by_type[0].0.ends_with("Pair"));
/// assert_eq!(stats.freed_by_type[0].1, 2);
/// println!("{stats}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CollectStats {
    /// Objects whose value the collection dropped. This includes members
    /// that the recount after the finalizers found alive but that went in
    /// the same collection all the same (a finalizer dropped their last
    /// handle, or only other members held them).
    pub freed: usize,
    /// Garbage objects that a finalizer made reachable again and that the
    /// collection handed back alive: they survive (PEP 442) and are not
    /// counted in `freed`.
    pub resurrected: usize,
    /// Candidates (objects whose count dropped to a non-zero value) examined
    /// as possible roots of garbage cycles.
    pub roots: usize,
    /// Objects in the subgraph reachable from the roots: the work done.
    pub examined: usize,
    /// Wall-clock time of the collection (callbacks not included), measured
    /// with the precise monotonic clock ([`std::time::Instant`]).
    pub duration: Duration,
    /// Freed objects per type name, most first (then by name). Empty unless
    /// asked for: by [`collect_with_stats`](crate::collect_with_stats), or by a registered callback.
    pub freed_by_type: Vec<(&'static str, usize)>,
}

impl fmt::Display for CollectStats {
    /// One line, like `freed 10 objects (6 app::Pair, 4 app::Ring);
    /// 0 resurrected; 7 roots, 10 objects examined in 12.3µs`.
    ///
    /// ```
    /// let s = rcycle::collect_with_stats();
    /// assert!(s.to_string().starts_with("freed 0 objects"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "freed {} objects", self.freed)?;
        if !self.freed_by_type.is_empty() {
            f.write_str(" (")?;
            for (i, (name, n)) in self.freed_by_type.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(f, "{sep}{n} {name}")?;
            }
            f.write_str(")")?;
        }
        write!(
            f,
            "; {} resurrected; {} roots, {} objects examined in {:?}",
            self.resurrected, self.roots, self.examined, self.duration
        )
    }
}

/// When a collection callback is called.
///
/// ```
/// use rcycle::CollectPhase;
/// assert_ne!(CollectPhase::Start, CollectPhase::Stop);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum CollectPhase {
    /// Before the collection looks at anything; the stats are all zero.
    Start,
    /// After the collection freed its garbage; the stats are final.
    Stop,
}

/// Times a collection.
///
/// Two precise clock reads (`Instant::now` then `elapsed`) cost about 45 ns
/// on a Linux VM, as much as a whole collection of a handful of candidates.
/// So a collection whose own duration nobody will see (a plain `collect()`
/// or an automatic one, with no callback registered) only adds to the
/// thread's total ([`crate::report::CollectorCounters::duration`]), estimated so
/// that it is right on average over many collections:
///
/// - it is timed with the *coarse* monotonic clock (`CLOCK_MONOTONIC_COARSE`,
///   a few ns a read on Linux, but it only moves every 1 to 4 ms): one
///   coarse duration is either zero or a few ticks, but the sum over many
///   collections counts each clock tick that fell inside a collection;
/// - a *small* one (fewer than [`Stopwatch::SMALL`] candidates waiting) is
///   timed only once in [`Stopwatch::SAMPLE`] on average, at gaps drawn
///   from a cheap pseudo-random sequence, and then counts `SAMPLE` times:
///   even two coarse reads were the largest single cost left in a
///   collection of a dead 2-cycle (about 8 of 60 ns), and a sampled total
///   has the same expected value.
///
/// Where no coarse clock exists, every collection uses the precise one.
pub(crate) struct Stopwatch {
    precise: Option<std::time::Instant>,
    /// When the coarse watch started, or `None` if this collection is not
    /// timed at all (a small one left out of the sample).
    coarse: Option<Duration>,
    /// How many collections this one's time stands for in the total.
    weight: u32,
}

impl Stopwatch {
    /// Below this many waiting candidates, an unobserved collection is only
    /// timed if sampled.
    pub const SMALL: usize = 64;
    /// One small unobserved collection in this many (on average) is timed.
    pub const SAMPLE: u32 = 16;

    /// Starts timing: precisely if `precise`; else coarsely, and for a small
    /// collection (`candidates` below [`SMALL`](Self::SMALL)) only if the
    /// draw from `sampler` picks it.
    #[inline]
    pub fn start(precise: bool, candidates: usize, sampler: &Sampler) -> Stopwatch {
        if precise || !coarse_clock::AVAILABLE {
            return Stopwatch {
                precise: Some(std::time::Instant::now()),
                coarse: None,
                weight: 1,
            };
        }
        let weight = if candidates < Self::SMALL {
            if !sampler.draw(Self::SAMPLE) {
                return Stopwatch {
                    precise: None,
                    coarse: None,
                    weight: 0,
                };
            }
            Self::SAMPLE
        } else {
            1
        };
        Stopwatch {
            precise: None,
            coarse: Some(coarse_clock::now()),
            weight,
        }
    }

    /// The time since `start`: `(precise, for the total)`. The precise one
    /// is zero if the watch was coarse; the one for the total is weighted
    /// (zero for a collection left out of the sample).
    #[inline]
    pub fn stop(&self) -> (Duration, Duration) {
        match (self.precise, self.coarse) {
            (Some(started), _) => {
                let d = started.elapsed();
                (d, d)
            }
            (None, Some(started)) => {
                let d = coarse_clock::now().saturating_sub(started);
                (Duration::ZERO, d.saturating_mul(self.weight))
            }
            (None, None) => (Duration::ZERO, Duration::ZERO),
        }
    }
}

/// Picks which small collections are timed: one in `n` on average, at
/// gaps drawn at random (an xorshift sequence), so that the sample does not
/// follow a program's own period the way "every 16th collection" could.
/// Between two picks a draw only counts down (the xorshift step runs once
/// per pick, not once per collection).
pub(crate) struct Sampler {
    /// The xorshift state.
    state: Cell<u32>,
    /// Draws left until the next pick.
    countdown: Cell<u32>,
}

impl Sampler {
    pub fn new() -> Sampler {
        Sampler {
            state: Cell::new(0x9E37_79B9),
            countdown: Cell::new(1),
        }
    }

    /// `true` once every `n` draws on average (`n` at least 1, the same at
    /// every draw): each pick sets the gap to the next one, uniform in
    /// `1..=2n - 1` (mean `n`).
    #[inline]
    pub fn draw(&self, n: u32) -> bool {
        debug_assert!(n >= 1);
        let left = self.countdown.get();
        if left > 1 {
            self.countdown.set(left - 1);
            return false;
        }
        let mut x = self.state.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state.set(x);
        self.countdown.set(1 + x % (2 * n - 1));
        true
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod coarse_clock {
    use std::time::Duration;

    pub const AVAILABLE: bool = true;

    /// `CLOCK_MONOTONIC_COARSE`, as a duration since an arbitrary origin.
    #[inline]
    pub fn now() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec`; the clock id exists
        // on Linux since 2.6.32. On failure `ts` stays zero: the collection
        // then adds nothing to the total, which is harmless.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod coarse_clock {
    use std::time::Duration;

    pub const AVAILABLE: bool = false;

    pub fn now() -> Duration {
        Duration::ZERO
    }
}

/// Identifies a callback registered with [`add_collect_callback`](crate::add_collect_callback), to remove
/// it with [`remove_collect_callback`](crate::remove_collect_callback).
///
/// ```
/// let id = rcycle::add_collect_callback(|_, _| {});
/// assert!(rcycle::remove_collect_callback(id));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

pub(crate) type Callback = Rc<dyn Fn(CollectPhase, &CollectStats)>;

/// A panic payload caught from user code, re-raised later.
pub(crate) type Panic = Option<Box<dyn Any + Send>>;

/// The statistics and callbacks a heap keeps (one per thread).
pub(crate) struct HeapStats {
    /// Registered callbacks, in registration order. Borrowed only inside
    /// this module's methods, never while a callback runs.
    callbacks: RefCell<Vec<(CallbackId, Callback)>>,
    next_id: Cell<u64>,
    /// The thread is exiting: its final collections call no callback (as
    /// CPython's collection at interpreter shutdown).
    exiting: Cell<bool>,
    freed_total: Cell<u64>,
    resurrected_total: Cell<u64>,
    duration_total: Cell<Duration>,
    /// Which small unobserved collections are timed (see [`Stopwatch`]).
    pub sampler: Sampler,
}

/// The callbacks of one collection: a snapshot taken when it starts, so a
/// callback that adds or removes callbacks changes the next collection only,
/// and every callback that saw `Start` sees `Stop`.
pub(crate) struct CallbackList(Vec<Callback>);

impl CallbackList {
    /// Whether no callback is registered (then nobody reads per-type counts).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Calls every callback. A panic is caught (the other callbacks still
    /// run) and the first one is kept in `first_panic` for the caller to
    /// re-raise once the heap is consistent.
    #[inline]
    pub fn call(&self, phase: CollectPhase, stats: &CollectStats, first_panic: &mut Panic) {
        for callback in &self.0 {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(phase, stats))) {
                first_panic.get_or_insert(payload);
            }
        }
    }
}

impl HeapStats {
    pub fn new() -> HeapStats {
        HeapStats {
            callbacks: RefCell::new(Vec::new()),
            next_id: Cell::new(0),
            exiting: Cell::new(false),
            freed_total: Cell::new(0),
            resurrected_total: Cell::new(0),
            duration_total: Cell::new(Duration::ZERO),
            sampler: Sampler::new(),
        }
    }

    /// The callbacks to call for the collection that is starting.
    #[inline]
    pub fn snapshot(&self) -> CallbackList {
        let callbacks = self.callbacks.borrow();
        if callbacks.is_empty() || self.exiting.get() {
            return CallbackList(Vec::new());
        }
        CallbackList(callbacks.iter().map(|(_, c)| Rc::clone(c)).collect())
    }

    /// Called by the thread-exit teardown before its final collections.
    pub fn thread_exiting(&self) {
        self.exiting.set(true);
    }

    /// Adds one collection's figures to the totals; `duration` is the
    /// collection's time as the [`Stopwatch`] measured it for the total.
    pub fn record(&self, stats: &CollectStats, duration: Duration) {
        let freed = &self.freed_total;
        freed.set(freed.get() + stats.freed as u64);
        let resurrected = &self.resurrected_total;
        resurrected.set(resurrected.get() + stats.resurrected as u64);
        // (Most small collections are not timed: nothing to add.)
        if !duration.is_zero() {
            let total = &self.duration_total;
            total.set(total.get().saturating_add(duration));
        }
    }

    /// Objects freed by collections, over all collections of the thread.
    pub fn freed_total(&self) -> u64 {
        self.freed_total.get()
    }

    /// Objects resurrected by finalizers, over all collections of the thread.
    pub fn resurrected_total(&self) -> u64 {
        self.resurrected_total.get()
    }

    /// Time spent collecting, over all collections of the thread.
    pub fn duration_total(&self) -> Duration {
        self.duration_total.get()
    }

    pub fn add(&self, callback: Callback) -> CallbackId {
        let id = CallbackId(self.next_id.get());
        self.next_id.set(id.0 + 1);
        self.callbacks.borrow_mut().push((id, callback));
        id
    }

    pub fn remove(&self, id: CallbackId) -> bool {
        // The callback itself is dropped after the borrow ends: its captures
        // may run user `Drop` code that registers or removes callbacks.
        let removed = {
            let mut callbacks = self.callbacks.borrow_mut();
            let position = callbacks.iter().position(|(i, _)| *i == id);
            position.map(|p| callbacks.remove(p))
        };
        removed.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fewer iterations under Miri, which interprets every one.
    const SCALE: usize = if cfg!(miri) { 10 } else { 1 };

    #[test]
    fn sampler_picks_about_one_in_n() {
        let sampler = Sampler::new();
        let draws = 160_000 / SCALE;
        let picked = (0..draws).filter(|_| sampler.draw(16)).count();
        // draws / 16 expected (10,000, or 1,000 under Miri): the gaps are
        // uniform in 1..=31 (mean 16, variance 80), so within 5% is about 9
        // standard deviations at the full count. The sequence is fixed, so
        // is the outcome (9,947 and 1,000).
        let expected = draws / 16;
        assert!(
            picked.abs_diff(expected) * 20 <= expected,
            "picked {picked} of {draws}"
        );
    }

    #[test]
    fn sampled_small_collections_weigh_sample_times() {
        let sampler = Sampler::new();
        let mut timed = 0;
        let starts = 1_000 / SCALE;
        for _ in 0..starts {
            let watch = Stopwatch::start(false, Stopwatch::SMALL - 1, &sampler);
            if coarse_clock::AVAILABLE {
                assert_eq!(watch.precise, None);
                assert!(watch.weight == 0 || watch.weight == Stopwatch::SAMPLE);
                timed += usize::from(watch.weight != 0);
                assert_eq!(watch.stop().0, Duration::ZERO);
            }
        }
        if coarse_clock::AVAILABLE {
            // starts / 16 expected (62.5, or 6.25 under Miri).
            let (low, high) = (starts / 32, starts / 10);
            assert!((low..=high).contains(&timed), "timed {timed} of {starts}");
        }
        // Big and observed collections are always timed, with weight 1.
        let big = Stopwatch::start(false, Stopwatch::SMALL, &sampler);
        assert_eq!(big.weight, 1);
        assert_eq!(big.coarse.is_some(), coarse_clock::AVAILABLE);
        let observed = Stopwatch::start(true, 0, &sampler);
        assert_eq!((observed.weight, observed.precise.is_some()), (1, true));
        let (precise, total) = observed.stop();
        assert_eq!(precise, total);
    }
}
