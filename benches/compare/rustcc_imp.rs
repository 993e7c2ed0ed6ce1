//! rust-cc 0.6 (feature `weak-ptrs` for the weak-parent trees): `Cc`,
//! `weak::Weak`, `#[derive(Trace, Finalize)]`, automatic collection on (the
//! default), `collect_cycles()` at the end of each workload.

use std::cell::RefCell as Cell;

use rust_cc::weak::Weak as W;
use rust_cc::{Cc as P, Context, Finalize, Trace};

pub const NAME: &str = "rust-cc";

crate::nodes!([#[derive(Trace, Finalize)]] weak);

// SAFETY: `Counted` owns no `Cc`.
unsafe impl Trace for Counted {
    fn trace(&self, _: &mut Context<'_>) {}
}

impl Finalize for Counted {}

fn collect_all() {
    rust_cc::collect_cycles();
}

fn downgrade<T: Trace>(p: &P<T>) -> W<T> {
    p.downgrade()
}

macro_rules! if_rc {
    ($($t:tt)*) => {};
}

crate::workloads!();
crate::weak_workloads!();
