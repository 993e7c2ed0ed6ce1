//! Leak checks for tests: memlab's baseline / target / final check and
//! pytest-memray's `limit_leaks`, for `Gc` graphs.
//!
//! [`LeakCheck::start`] collects and records every live object (the
//! baseline); the code under test runs; [`LeakCheck::finish`] (or
//! [`assert_no_leaks`](LeakCheck::assert_no_leaks) in a `#[test]`) looks at
//! the objects made since. It fails when some of them are still alive after a
//! collection (a leak: who holds them is reported, grouped), or when some
//! were only freed by the cycle collector (garbage cycles: the code would
//! leak with `Rc`, and the report names the field to make a `WeakGc`).
//! Each thread has its own heap, so checks in `cargo test`'s parallel test
//! threads do not see each other.

use std::fmt;

use super::cycles::GarbageReport;
use super::graph::HeapGraph;
use super::suspects::{new_objects_held_by, RetainerGroup};
use super::{LiveReport, Snapshot};

/// A leak check in progress (see the module documentation). Automatic
/// collection is paused while it runs, so that garbage cycles made by the
/// checked code are still there for [`finish`](Self::finish) to see (a
/// `collect()` called by the checked code itself frees them unseen); it is
/// put back as it was when the check ends or is dropped.
///
/// ```
/// use rcycle::report::LeakCheck;
/// use rcycle::{Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Cache { entries: RefCell<Vec<Gc<String>>> }
///
/// let cache = Gc::new(Cache { entries: RefCell::new(Vec::new()) });
/// let check = LeakCheck::start();
/// {
///     let s = Gc::new(String::from("request 1"));
///     cache.entries.borrow_mut().push(s); // kept forever: a leak
/// }
/// let report = check.finish().unwrap_err();
/// assert_eq!(report.alive().count(), 1);
/// assert!(report.to_string().contains("through "));
///
/// let check = LeakCheck::start();
/// let s = Gc::new(String::from("request 2"));
/// drop(s); // gone: no leak
/// check.assert_no_leaks();
/// ```
pub struct LeakCheck {
    baseline: Snapshot,
    /// Whether automatic collection was on when the check started.
    was_enabled: bool,
}

impl LeakCheck {
    /// Collects, then records every live object of this thread: the
    /// baseline. Pauses automatic collection until the check ends.
    ///
    /// ```
    /// let check = rcycle::report::LeakCheck::start();
    /// assert!(!rcycle::is_enabled());
    /// check.assert_no_leaks();
    /// assert!(rcycle::is_enabled());
    /// ```
    pub fn start() -> LeakCheck {
        let was_enabled = crate::is_enabled();
        crate::disable();
        crate::collect();
        LeakCheck {
            baseline: Snapshot::take(),
            was_enabled,
        }
    }

    /// Ends the check: `Ok` if every object made since [`start`](Self::start)
    /// is gone without the cycle collector's help; else what went wrong.
    /// Runs a dry run, then a collection.
    ///
    /// ```
    /// let check = rcycle::report::LeakCheck::start();
    /// let kept = rcycle::Gc::new(5u32);
    /// let report = check.finish().unwrap_err();
    /// assert_eq!(report.alive().count(), 1);
    /// assert!(report.cycles().is_none());
    /// ```
    pub fn finish(self) -> Result<(), LeakReport> {
        let made = self.baseline.new_objects_report().count();
        let dry = super::collect_dry_run();
        crate::collect();
        let alive = self.baseline.new_objects_report();
        let collected = made - alive.count();
        let held_by = if alive.count() == 0 {
            Vec::new()
        } else {
            let graph = HeapGraph::capture();
            new_objects_held_by(&graph, &self.baseline)
        };
        if collected == 0 && alive.count() == 0 {
            return Ok(());
        }
        Err(LeakReport {
            collected,
            cycles: (collected > 0).then(|| Box::new(dry.garbage)),
            alive: Box::new(alive),
            held_by,
        })
    }

    /// [`finish`](Self::finish), panicking with the report: for `#[test]`
    /// functions.
    ///
    /// ```should_panic
    /// let check = rcycle::report::LeakCheck::start();
    /// let kept = rcycle::Gc::new(5u32);
    /// check.assert_no_leaks(); // panics: "Leak check failed: ..."
    /// ```
    #[track_caller]
    pub fn assert_no_leaks(self) {
        if let Err(report) = self.finish() {
            panic!("{report}");
        }
    }
}

impl Drop for LeakCheck {
    fn drop(&mut self) {
        if self.was_enabled {
            crate::enable();
        }
    }
}

/// What a failed [`LeakCheck`] found.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LeakReport {
    collected: usize,
    // (Boxed: a `Result` carries the report by value.)
    cycles: Option<Box<GarbageReport>>,
    alive: Box<LiveReport>,
    held_by: Vec<RetainerGroup>,
}

impl LeakReport {
    /// The objects made since the check started that are still alive after a
    /// collection, by type.
    ///
    /// ```
    /// let check = rcycle::report::LeakCheck::start();
    /// let kept = rcycle::Gc::new(5u32);
    /// let report = check.finish().unwrap_err();
    /// assert_eq!(report.alive().rows()[0].kind, "u32");
    /// ```
    pub fn alive(&self) -> &LiveReport {
        &self.alive
    }

    /// How the objects still alive are held: the first of them on each chain
    /// from outside the heap (those held by an object older than the check,
    /// or held from outside), grouped by the folded label of the edge that
    /// holds them (`.expected[*]`) and by their type, with the size of
    /// everything new behind them. The holder type is `<held outside>` for
    /// an object held from outside the heap.
    ///
    /// ```
    /// let check = rcycle::report::LeakCheck::start();
    /// let kept = rcycle::Gc::new(5u32);
    /// let report = check.finish().unwrap_err();
    /// assert_eq!(report.held_by()[0].holder_type, "<held outside>");
    /// ```
    pub fn held_by(&self) -> &[RetainerGroup] {
        &self.held_by
    }

    /// How many objects made since the check started only the cycle
    /// collector freed.
    ///
    /// ```
    /// let check = rcycle::report::LeakCheck::start();
    /// let kept = rcycle::Gc::new(5u32);
    /// assert_eq!(check.finish().unwrap_err().collected(), 0);
    /// ```
    pub fn collected(&self) -> usize {
        self.collected
    }

    /// The garbage cycles the final collection found (with the fields to
    /// make weak), if it freed any object made since the check started.
    ///
    /// ```
    /// use rcycle::{Gc, Trace};
    /// use std::cell::RefCell;
    /// #[derive(Trace)]
    /// struct Ring { next: RefCell<Option<Gc<Ring>>> }
    /// let check = rcycle::report::LeakCheck::start();
    /// let r = Gc::new(Ring { next: RefCell::new(None) });
    /// *r.next.borrow_mut() = Some(r.clone());
    /// drop(r);
    /// let report = check.finish().unwrap_err();
    /// assert_eq!(report.collected(), 1);
    /// assert!(report.cycles().is_some());
    /// ```
    pub fn cycles(&self) -> Option<&GarbageReport> {
        self.cycles.as_deref()
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Leak check failed.")?;
        if self.alive.count() > 0 {
            let n = self.alive.count();
            writeln!(
                f,
                "\n{n} {} made since the check started {} still alive ({} bytes):",
                if n == 1 { "object" } else { "objects" },
                if n == 1 { "is" } else { "are" },
                self.alive.size()
            )?;
            for row in self.alive.rows() {
                writeln!(f, "  {} {} ({} bytes)", row.count, row.kind, row.size)?;
            }
            writeln!(f, "held by:")?;
            for group in &self.held_by {
                writeln!(f, "  {group}")?;
            }
        }
        if let Some(cycles) = &self.cycles {
            let n = self.collected;
            writeln!(
                f,
                "\n{n} {} made since the check started {} freed only by the cycle collector \
                 (an Rc would leak {}):",
                if n == 1 { "object" } else { "objects" },
                if n == 1 { "was" } else { "were" },
                if n == 1 { "it" } else { "them" },
            )?;
            write!(f, "{cycles}")?;
        }
        Ok(())
    }
}
