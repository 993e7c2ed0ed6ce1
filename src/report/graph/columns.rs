//! The objects of a [`HeapGraph`](super::HeapGraph), one column per field.

use std::collections::HashMap;

use crate::header::MAX_TYPE_INDEX;
use crate::report::big_vec::BigVec;
use crate::types::TypeEntry;

/// `kind` bit: the object is a dead box.
pub(super) const DEAD: u32 = 1 << 31;
/// `kind` bit: the object's edges are unknown.
pub(super) const UNTRACEABLE_NODE: u32 = 1 << 30;
/// `kind` bits of the type index (the heap's, [`MAX_TYPE_INDEX`] at most).
pub(super) const TYPE_MASK: u32 = UNTRACEABLE_NODE - 1;
const _: () = assert!(MAX_TYPE_INDEX <= TYPE_MASK);
/// `size`: the size is in `big_size`.
pub(super) const BIG_SIZE: u32 = u32::MAX;
/// `counts`: strong in the low [`STRONG_BITS`], weak in the bits above,
/// or [`BIG_COUNTS`] and both in `big_counts`.
pub(super) const STRONG_BITS: u32 = 20;
pub(super) const STRONG_MASK: u32 = (1 << STRONG_BITS) - 1;
pub(super) const WEAK_MAX: u32 = (1 << (31 - STRONG_BITS)) - 1;
pub(super) const BIG_COUNTS: u32 = 1 << 31;

/// The objects of a graph, one column per field (about 24 bytes an object
/// where `ObjectInfo` takes 56), sorted by address.
#[derive(Default)]
pub(super) struct Columns {
    /// Addresses (ids), ascending (set once every other column is filled:
    /// the capture keeps the list on its own until then).
    pub(super) addr: BigVec<usize>,
    /// The heap's type index, with [`DEAD`] and [`UNTRACEABLE_NODE`].
    pub(super) kind: BigVec<u32>,
    /// Sizes; [`BIG_SIZE`] for the rare one that needs more bits.
    pub(super) size: BigVec<u32>,
    pub(super) big_size: HashMap<u32, usize>,
    /// Strong and weak counts, packed; [`BIG_COUNTS`]: in `big_counts`.
    pub(super) counts: BigVec<u32>,
    pub(super) big_counts: HashMap<u32, (u32, u32)>,
    /// Strong count minus the edges from other objects.
    pub(super) outside: BigVec<u32>,
    /// Type names by type index (`""`: no object of that type).
    pub(super) type_names: Vec<&'static str>,
}

impl Columns {
    pub(super) fn with_capacity(n: usize) -> Columns {
        Columns {
            kind: BigVec::with_capacity(n),
            size: BigVec::with_capacity(n),
            counts: BigVec::with_capacity(n),
            ..Columns::default()
        }
    }

    pub(super) fn len(&self) -> usize {
        self.kind.len()
    }

    /// Adds the next node (in address order): `kind` is its type index
    /// with its flags.
    #[inline(always)]
    pub(super) fn push(
        &mut self,
        entry: &TypeEntry,
        kind: u32,
        size: usize,
        strong: u32,
        weak: u32,
    ) {
        let n = self.len();
        let t = (kind & TYPE_MASK) as usize;
        match self.type_names.get(t) {
            Some(name) if !name.is_empty() => {}
            _ => self.name_type(t, entry),
        }
        self.kind.push(kind);
        match u32::try_from(size) {
            Ok(s) if s != BIG_SIZE => self.size.push(s),
            _ => {
                self.size.push(BIG_SIZE);
                self.big_size.insert(Self::node(n), size);
            }
        }
        if strong <= STRONG_MASK && weak <= WEAK_MAX {
            self.counts.push(strong | weak << STRONG_BITS);
        } else {
            self.counts.push(BIG_COUNTS);
            self.big_counts.insert(Self::node(n), (strong, weak));
        }
    }

    /// Records the name of type `t` (the first node of that type).
    #[cold]
    fn name_type(&mut self, t: usize, entry: &TypeEntry) {
        if t >= self.type_names.len() {
            self.type_names.resize(t + 1, "");
        }
        self.type_names[t] = (entry.info.type_name)();
    }

    pub(super) fn node(n: usize) -> u32 {
        // (Node numbers fit: `Nodes` checks.)
        n as u32
    }

    #[inline]
    pub(super) fn size(&self, n: usize) -> usize {
        match self.size[n] {
            BIG_SIZE => self.big_size[&Self::node(n)],
            s => s as usize,
        }
    }

    #[inline]
    pub(super) fn set_size(&mut self, n: usize, size: usize) {
        if self.size[n] == BIG_SIZE {
            self.big_size.remove(&Self::node(n));
        }
        self.size[n] = match u32::try_from(size) {
            Ok(s) if s != BIG_SIZE => s,
            _ => {
                self.big_size.insert(Self::node(n), size);
                BIG_SIZE
            }
        };
    }

    /// `(strong, weak)`.
    #[inline]
    pub(super) fn counts(&self, n: usize) -> (u32, u32) {
        match self.counts[n] {
            c if c & BIG_COUNTS != 0 => self.big_counts[&Self::node(n)],
            c => (c & STRONG_MASK, c >> STRONG_BITS),
        }
    }

    #[inline]
    pub(super) fn set_counts(&mut self, n: usize, strong: u32, weak: u32) {
        if self.counts[n] & BIG_COUNTS != 0 {
            self.big_counts.remove(&Self::node(n));
        }
        self.counts[n] = if strong <= STRONG_MASK && weak <= WEAK_MAX {
            strong | weak << STRONG_BITS
        } else {
            self.big_counts.insert(Self::node(n), (strong, weak));
            BIG_COUNTS
        };
    }

    #[inline]
    pub(super) fn has(&self, n: usize, flag: u32) -> bool {
        self.kind[n] & flag != 0
    }

    #[inline]
    pub(super) fn set_flag(&mut self, n: usize, flag: u32, on: bool) {
        if on {
            self.kind[n] |= flag;
        } else {
            self.kind[n] &= !flag;
        }
    }

    pub(super) fn type_name(&self, n: usize) -> &'static str {
        self.type_names[(self.kind[n] & TYPE_MASK) as usize]
    }

    /// Fills `outside` from the strong counts and the edge targets.
    pub(super) fn count_outside(&mut self, out_target: &[u32]) {
        let mut outside = BigVec::filled(0u32, self.len());
        for &t in out_target {
            outside[t as usize] += 1;
        }
        for (n, o) in outside.iter_mut().enumerate() {
            *o = self.counts(n).0.saturating_sub(*o);
        }
        self.outside = outside;
    }
}
