//! gc 0.5 (`features = ["derive"]`): `Gc`, `GcCell` (its `Trace` has no impl
//! for `RefCell`), `#[derive(Trace, Finalize)]`, its automatic collection,
//! `force_collect()` at the end of each workload. A tracing collector: no
//! object is freed before a collection. No weak pointer.

// gc_derive (synstructure) wraps its impls in a `const _`.
#![allow(non_local_definitions)]

use gc::{Finalize, Gc as P, GcCell as Cell, Trace};

pub const NAME: &str = "gc";

crate::nodes!([#[derive(Trace, Finalize)]]);

// SAFETY: `Counted` owns no `Gc`.
unsafe impl Trace for Counted {
    gc::unsafe_empty_trace!();
}

impl Finalize for Counted {}

fn collect_all() {
    gc::force_collect();
}

macro_rules! if_rc {
    ($($t:tt)*) => {};
}

const PARENT_WEAK: Option<fn(usize) -> usize> = None;

crate::workloads!();
