//! Allocation sites (cargo feature `sites`): where each live object was made.
//!
//! `Gc::new` is `#[track_caller]`, so the line that called it is known for
//! free: every object gets it ([`SiteTable::record`]). A line is not
//! enough when objects are made through a helper (every request made by
//! `Request::new` lands on that helper's line), so, like tracemalloc's
//! `nframe`, a thread can ask for up to N frames of the call stack
//! ([`SiteTable::set_frames`]): then each allocation also walks the stack
//! (the `backtrace` crate's unwinder, no symbols), and the addresses are
//! interned, one copy per distinct stack. Symbols are looked up only when a
//! report prints them.
//!
//! What it costs (`benches/notes.md`, "Allocation sites with N frames"): a
//! hash-map insert per allocation for the line; with frames, the stack walk
//! and a lookup of the stack in the intern table.

use std::collections::HashMap;
use std::panic::Location;

use crate::addr_map::AddrMap;

/// Frames skipped at the top of a captured stack before counting: the
/// capture itself and the allocation path inside rcycle, whose exact depth
/// depends on inlining (frames of rcycle and `backtrace` left after these
/// are dropped when the stack is printed).
const SKIP: usize = 2;

/// Frames captured beyond the ones asked for, so that the rcycle frames
/// the printer drops do not eat into them.
const SPARE: usize = 6;

/// One heap's record of allocation sites.
#[derive(Default)]
pub(crate) struct SiteTable {
    /// The line of the `Gc::new` call, by object address.
    lines: AddrMap<&'static Location<'static>>,
    /// The interned stack, by object address (only objects made while
    /// `frames > 1`).
    stacks: AddrMap<u32>,
    /// Stack number by (frames asked for, stack), and the stacks by number.
    interned: HashMap<(usize, Box<[usize]>), u32>,
    by_number: Vec<(usize, Box<[usize]>)>,
    /// How many frames to record (1: the line only).
    frames: usize,
}

impl SiteTable {
    /// Records the line of the object at `addr`, and its stack if frames
    /// are asked for.
    #[inline]
    pub fn record(&mut self, addr: usize, line: &'static Location<'static>) {
        self.lines.insert(addr, line);
        if self.frames > 1 {
            self.record_stack(addr);
        }
    }

    #[cold]
    fn record_stack(&mut self, addr: usize) {
        let want = self.frames + SPARE;
        let mut ips = Vec::with_capacity(want);
        let mut skipped = 0;
        // (`trace` walks this thread's stack; no symbol is looked up.)
        backtrace::trace(|frame| {
            if skipped < SKIP {
                skipped += 1;
            } else {
                ips.push(frame.ip() as usize);
            }
            ips.len() < want
        });
        let next = self.by_number.len() as u32;
        let key = (self.frames, ips.into_boxed_slice());
        let number = *self.interned.entry(key.clone()).or_insert(next);
        if number == next {
            self.by_number.push(key);
        }
        self.stacks.insert(addr, number);
    }

    /// Forgets the object at `addr` (freed).
    #[inline]
    pub fn remove(&mut self, addr: usize) {
        self.lines.remove(&addr);
        if !self.stacks.is_empty() {
            self.stacks.remove(&addr);
        }
    }

    /// The line the object at `addr` was made at, if recorded.
    pub fn line_of(&self, addr: usize) -> Option<&'static Location<'static>> {
        self.lines.get(&addr).copied()
    }

    /// The number of the stack the object at `addr` was made with, if
    /// recorded ([`stack`](Self::stack) gives the stack).
    pub fn stack_number_of(&self, addr: usize) -> Option<u32> {
        self.stacks.get(&addr).copied()
    }

    /// Stack number `number`: the frames asked for when it was recorded,
    /// and instruction addresses, innermost first (more than that many: the
    /// printer drops rcycle's own frames).
    pub fn stack(&self, number: u32) -> (usize, &[usize]) {
        let (frames, ips) = &self.by_number[number as usize];
        (*frames, ips)
    }

    /// Sets how many frames later allocations record (at least 1).
    pub fn set_frames(&mut self, frames: usize) {
        self.frames = frames.max(1);
    }

    /// How many frames allocations record.
    pub fn frames(&self) -> usize {
        self.frames.max(1)
    }
}
