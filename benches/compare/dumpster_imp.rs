//! dumpster 2.x, `unsync` module: `Gc`, `Trace` written by hand exactly as
//! its derive writes it (the derive cannot see through our `nodes!` macro:
//! it spans `self` with the field's hygiene), the default collect condition
//! (automatic), `unsync::collect()` at the end of each workload. No weak
//! pointer.
//!
//! Ported from dumpster 1.2: `Trace` is now sealed (a blanket impl over
//! `TraceWith<V>` for every visitor), so the impls below implement
//! `TraceWith<V>` for all `V: Visitor`, as the 2.0 derive does, instead of
//! `Trace` with a generic `accept<V>`. The visited fields, their order, the
//! collector (same algorithm and default collect condition as 1.2) and
//! everything the workloads call (`Gc::new`, `clone`, `Deref`,
//! `unsync::collect`) are unchanged.

use std::cell::RefCell as Cell;

use dumpster::unsync::Gc as P;
use dumpster::{TraceWith, Visitor};

pub const NAME: &str = "dumpster";

crate::nodes!([]);

macro_rules! trace_fields {
    ($($ty:ident: $($field:ident),*;)*) => {
        // SAFETY: each field is visited once; they are all the `Gc`s owned.
        $(unsafe impl<V: Visitor> TraceWith<V> for $ty {
            #[allow(unused_variables)]
            fn accept(&self, visitor: &mut V) -> Result<(), ()> {
                $(TraceWith::accept(&self.$field, visitor)?;)*
                Ok(())
            }
        })*
    };
}

trace_fields! {
    Counted: ;
    Tree: left, right;
    PTree: parent, left, right;
    LNode: next, prev;
    GNode: label, edges;
    MNode: refs;
    Val: v;
    Pair: other;
    RNode: next, prev;
}

fn collect_all() {
    dumpster::unsync::collect();
}

macro_rules! if_rc {
    ($($t:tt)*) => {};
}

const PARENT_WEAK: Option<fn(usize) -> usize> = None;

crate::workloads!();
