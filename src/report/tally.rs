//! The per-type tally behind every table of objects by type: the rows of a
//! [`LiveReport`](super::LiveReport) (and so of a [`Snapshot`](super::Snapshot),
//! its growth and `new_objects_report`, `live_report_with_retained` and the
//! daemon report) and the garbage by type of a
//! [`GarbageReport`](super::GarbageReport).
//!
//! Not here, on purpose: the sites table (`live_report_by_site`) counts by
//! source line, not by type; `Dominators::retained_by_type` sums retained
//! sizes with its own rule against counting a byte twice, not objects; and
//! the growth tables sort by change, not by size.

use crate::heap::Heap;

/// Objects and bytes per type index, as a heap walk finds them.
#[derive(Default)]
pub(crate) struct TypeTally {
    /// (objects, bytes) by type index; index 0 is never a type.
    slots: Vec<(usize, usize)>,
}

impl TypeTally {
    /// A tally with room for the `types` types registered now (it grows if
    /// more are registered meanwhile).
    pub(crate) fn with_types(types: usize) -> TypeTally {
        TypeTally {
            slots: vec![(0, 0); types + 1],
        }
    }

    /// Counts one object of type `index` taking `bytes`.
    #[inline(always)]
    pub(crate) fn add(&mut self, index: u32, bytes: usize) {
        let index = index as usize;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, (0, 0));
        }
        let slot = &mut self.slots[index];
        slot.0 += 1;
        slot.1 += bytes;
    }

    /// The types with at least one object, in type-index order: their name,
    /// objects and bytes.
    pub(crate) fn types<'a>(
        &'a self,
        heap: &'a Heap,
    ) -> impl Iterator<Item = (&'static str, usize, usize)> + 'a {
        (1..self.slots.len())
            .filter(|&t| self.slots[t].0 > 0)
            .map(|t| {
                let (count, size) = self.slots[t];
                ((heap.type_entry(t as u32).info.type_name)(), count, size)
            })
    }
}

/// The order of a table of objects by type.
#[derive(Clone, Copy)]
pub(crate) enum RowOrder {
    /// Largest size first, then most objects, then by name: guppy's
    /// partition ([`LiveReport`](super::LiveReport)), which is about memory.
    Largest,
    /// Most objects first, then largest size, then by name: the garbage by
    /// type ([`GarbageReport::by_type`](super::GarbageReport::by_type)),
    /// read next to the cycle kinds, which are counted in objects too.
    Most,
}

/// Sorts `rows` by `order`; `key` gives a row's (size, objects, name).
/// Stable: rows with the same key keep their order.
pub(crate) fn sort_rows<R>(
    rows: &mut [R],
    order: RowOrder,
    key: impl Fn(&R) -> (usize, usize, &str),
) {
    rows.sort_by(|a, b| {
        let ((a_size, a_count, a_name), (b_size, b_count, b_name)) = (key(a), key(b));
        let first = match order {
            RowOrder::Largest => b_size.cmp(&a_size).then(b_count.cmp(&a_count)),
            RowOrder::Most => b_count.cmp(&a_count).then(b_size.cmp(&a_size)),
        };
        first.then_with(|| a_name.cmp(b_name))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders() {
        let mut rows = vec![(10, 1, "b"), (10, 2, "c"), (20, 1, "a"), (10, 2, "a")];
        sort_rows(&mut rows, RowOrder::Largest, |&r| r);
        assert_eq!(
            rows,
            [(20, 1, "a"), (10, 2, "a"), (10, 2, "c"), (10, 1, "b")]
        );
        sort_rows(&mut rows, RowOrder::Most, |&r| r);
        assert_eq!(
            rows,
            [(10, 2, "a"), (10, 2, "c"), (20, 1, "a"), (10, 1, "b")]
        );
    }

    #[test]
    fn grows_and_skips_empty_types() {
        let mut t = TypeTally::default();
        t.add(3, 24);
        t.add(3, 8);
        assert_eq!(t.slots, [(0, 0), (0, 0), (0, 0), (2, 32)]);
    }
}
