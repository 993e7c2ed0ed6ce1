//! The leak reporter: what is alive on this thread's heap, and why.
//!
//! Modelled on Python's memory-debugging toolbox (`gc`, objgraph, guppy,
//! tracemalloc). Every report only *reads* the heap: it never collects
//! (unless asked to), never keeps what it reports alive, never changes a
//! count, and costs nothing while nobody asks for one.
//!
//! | The question | Here | In Python |
//! |---|---|---|
//! | What is alive, by type? | [`live_report`], [`live_report_with_retained`], `live_report_by_site`, `live_report_by_stack` (feature `sites`) | guppy's `hpy().heap()`, tracemalloc |
//! | What is leaking, in one call? | [`leak_suspects`] | Eclipse MAT's *Leak Suspects*, memlab's clusters |
//! | Does this test leak? | [`LeakCheck`] | memlab's baseline/target/final, pytest-memray's `limit_leaks` |
//! | What grew? | [`Snapshot`]: `growth`, `changes`, `compare`, `new_objects_report`, `new_objects_held_by` | objgraph's `show_growth`, guppy's `setrelheap`, tracemalloc's `compare_to` |
//! | What would a collection free, and which field to make weak? | [`collect_dry_run`], [`collect_explained`] | `gc.DEBUG_SAVEALL` |
//! | Why is this object alive? | [`why_alive`], [`referrers`], [`referents`], [`outside_holders`] | objgraph's `find_backref_chain`, `gc.get_referrers` |
//! | How many, and which? | [`count`], [`objects`], [`most_common_types`] | objgraph |
//! | What would go with it? | [`retained_size`], [`Dominators`] | guppy's `domisize` |
//! | Show me | [`dot`] (Graphviz), [`devtools`] (Chrome's heap snapshots) | objgraph's `show_backrefs` |
//! | My own query | [`HeapGraph`], [`ObjectId`], [`ObjectInfo`] | |
//! | A daemon's report, no debugger | [`install_report_signal`], [`report_if_requested`], `RCYCLE_REPORT_AT_EXIT=1` | |
//! | The collector's counters | [`CollectorCounters`], [`ResidentMemory`] | `gc.get_count` |
//!
//! The crate root re-exports the four calls a leak hunt starts with, one per
//! question of the README's *Hunting a leak*: [`live_report`],
//! [`Snapshot`], [`collect_dry_run`] and [`why_alive`]. Everything else,
//! the types those four return included, lives only here.
//!
//! ```
//! use rcycle::report::{self, ObjectId};
//! use rcycle::{Gc, Trace};
//!
//! #[derive(Trace)]
//! struct Dispatcher { expected: Vec<Gc<String>> }
//!
//! let iq = Gc::new(String::from("<iq id='1'/>"));
//! let d = Gc::new(Dispatcher { expected: vec![iq.clone()] });
//! assert_eq!(report::count::<Dispatcher>(), 1);
//! let chain = rcycle::why_alive(&iq).unwrap(); // or report::why_alive
//! assert!(chain.to_string().ends_with("Dispatcher .expected[0] -> alloc::string::String"));
//! assert_eq!(report::referrers(&iq).len(), 1);
//! let picture = report::dot::backrefs(&[ObjectId::of(&iq)], &Default::default());
//! assert!(picture.starts_with("digraph"));
//! ```

mod big_vec;
mod cycles;
pub(crate) mod daemon;
pub mod devtools;
pub mod dot;
mod graph;
pub(crate) mod ids;
mod leak_check;
mod live;
mod query;
mod related;
mod retained;
#[cfg(feature = "sites")]
mod sites;
mod snapshot;
mod suspects;
mod tally;

pub use cycles::{
    collect_dry_run, collect_explained, CycleKind, DryRun, EdgeCount, EdgeKind, GarbageReport,
    Suggestion, TypeCount,
};
#[cfg(unix)]
pub use daemon::install_report_signal;
pub use daemon::{report_if_requested, request_report, DaemonReport};
pub use graph::{HeapGraph, ObjectId, ObjectInfo};
pub use leak_check::{LeakCheck, LeakReport};
pub(crate) use live::partition;
pub use live::{
    live_report, most_common_types, CollectorCounters, LiveReport, ReportRow, ResidentMemory,
};
pub use query::{count, objects, outside_holders, why_alive, Chain, OutsideHolder, Related};
pub use related::{referents, referrers};
pub use retained::{live_report_with_retained, retained_size, Dominators};
#[cfg(feature = "sites")]
pub use sites::{
    live_report_by_site, live_report_by_stack, set_site_frames, site_frames, SiteReport, SiteRow,
};
pub use snapshot::{Growth, GrowthRow, Snapshot};
pub use suspects::{
    leak_suspects, leak_suspects_above, LeakSuspects, RetainerGroup, Suspect, CONCENTRATED,
    DEFAULT_SHARE,
};
