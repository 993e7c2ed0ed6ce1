//! rcycle: `Gc`, `WeakGc`, `#[derive(Trace)]`, automatic collection on (the
//! default), `rcycle::collect()` at the end of each workload.

use std::cell::RefCell as Cell;

use rcycle::{Gc as P, Trace, Tracer, WeakGc as W};

pub const NAME: &str = "rcycle";

crate::nodes!([#[derive(Trace)]] weak);

// SAFETY: `Counted` owns no `Gc`.
unsafe impl Trace for Counted {
    fn trace(&self, _: &mut Tracer<'_>) {}
    fn may_contain_gc() -> bool {
        false
    }
}

fn collect_all() {
    rcycle::collect();
}

fn downgrade<T: Trace + 'static>(p: &P<T>) -> W<T> {
    P::downgrade(p)
}

macro_rules! if_rc {
    ($($t:tt)*) => {};
}

crate::workloads!();
crate::weak_workloads!();
