//! bacon_rajan_cc 0.4: `Cc`, `Weak`, hand-written `Trace` (the crate has no
//! derive). It has no automatic collection: `collect_cycles()` at the end of
//! each workload (and wherever the workload collects).

use std::cell::RefCell as Cell;

use bacon_rajan_cc::{Cc as P, Trace, Tracer, Weak as W};

pub const NAME: &str = "bacon_rajan_cc";

crate::nodes!([] weak);

macro_rules! trace_fields {
    ($($ty:ident: $($field:ident),*;)*) => {
        $(impl Trace for $ty {
            #[allow(unused_variables)]
            fn trace(&self, tracer: &mut Tracer) {
                $(self.$field.trace(tracer);)*
            }
        })*
    };
}

trace_fields! {
    Counted: ;
    Tree: left, right;
    PTree: parent, left, right;
    WTree: parent, left, right;
    LNode: next, prev;
    GNode: label, edges;
    MNode: refs;
    Val: v;
    Pair: other;
    RNode: next, prev;
}

fn collect_all() {
    bacon_rajan_cc::collect_cycles();
}

fn downgrade<T: Trace>(p: &P<T>) -> W<T> {
    p.downgrade()
}

macro_rules! if_rc {
    ($($t:tt)*) => {};
}

crate::workloads!();
crate::weak_workloads!();
