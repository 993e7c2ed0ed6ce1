//! gcmodule 0.3: `Cc`, hand-written `Trace` (its derive cannot express
//! recursive types: `is_type_tracked` would recurse forever; its docs ask
//! for a manual impl returning `true`). No weak pointer, no automatic
//! collection: `collect_thread_cycles()` at the end of each workload.

use std::cell::RefCell as Cell;

use gcmodule::{Cc as P, Trace, Tracer};

pub const NAME: &str = "gcmodule";

crate::nodes!([]);

macro_rules! trace_fields {
    ($($ty:ident ($tracked:expr): $($field:ident),*;)*) => {
        $(impl Trace for $ty {
            #[allow(unused_variables)]
            fn trace(&self, tracer: &mut Tracer) {
                $(self.$field.trace(tracer);)*
            }
            fn is_type_tracked() -> bool {
                $tracked
            }
        })*
    };
}

trace_fields! {
    Counted (false): ;
    Tree (true): left, right;
    PTree (true): parent, left, right;
    LNode (true): next, prev;
    GNode (true): label, edges;
    MNode (true): refs;
    Val (false): v;
    Pair (true): other;
    RNode (true): next, prev;
}

fn collect_all() {
    gcmodule::collect_thread_cycles();
}

macro_rules! if_rc {
    ($($t:tt)*) => {};
}

const PARENT_WEAK: Option<fn(usize) -> usize> = None;

crate::workloads!();
