//! `std::rc::Rc`: the baseline. It frees no cycle, so wherever a workload
//! makes one, its cycles are broken by hand (the `if_rc!` blocks of the
//! workloads), and that work is timed.

use std::cell::RefCell as Cell;
use std::rc::{Rc as P, Weak as W};

pub const NAME: &str = "Rc";

crate::nodes!([] weak);

fn collect_all() {}

fn downgrade<T>(p: &P<T>) -> W<T> {
    P::downgrade(p)
}

macro_rules! if_rc {
    ($($t:tt)*) => { $($t)* };
}

crate::workloads!();
crate::weak_workloads!();
