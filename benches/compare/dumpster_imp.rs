//! dumpster 1.x, `unsync` module: `Gc`, `Trace` written by hand exactly as
//! its derive writes it (the derive cannot see through our `nodes!` macro:
//! it spans `self` with the field's hygiene), the default collect condition
//! (automatic), `unsync::collect()` at the end of each workload. No weak
//! pointer.

use std::cell::RefCell as Cell;

use dumpster::unsync::Gc as P;
use dumpster::{Trace, Visitor};

pub const NAME: &str = "dumpster";

crate::nodes!([]);

macro_rules! trace_fields {
    ($($ty:ident: $($field:ident),*;)*) => {
        // SAFETY: each field is visited once; they are all the `Gc`s owned.
        $(unsafe impl Trace for $ty {
            #[allow(unused_variables)]
            fn accept<V: Visitor>(&self, visitor: &mut V) -> Result<(), ()> {
                $(self.$field.accept(visitor)?;)*
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
