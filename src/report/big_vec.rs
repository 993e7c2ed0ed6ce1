//! [`BigVec`]: the reporter's arrays as long as the heap (a graph capture's,
//! the dominator tree's), in memory that Linux may back with transparent
//! huge pages.
//!
//! A capture of N objects writes about 36 N bytes of arrays, and that memory
//! is usually fresh: glibc maps every allocation over 32 MiB on its own and
//! unmaps it when it is freed, and gives the top of its heap back after a big
//! free, so each capture faults its arrays in again, one trap and one zeroed
//! 4 KiB page at a time. On this project's machine that costs 13.5 ms for
//! 36 MiB (a capture of one million objects takes about 25 ms without it),
//! and 1.2 ms when the memory is faulted in 2 MiB at a time
//! (benches/notes.md, "The capture's fresh memory"). So an array of at least
//! [`HUGE_FROM`] bytes is allocated aligned to a huge page and advised
//! `MADV_HUGEPAGE` before it is written: where transparent huge pages are
//! enabled (`always` or `madvise`, the usual defaults) the kernel serves its
//! faults 2 MiB at a time; elsewhere the advice does nothing. The memory is
//! still the global allocator's, allocated and freed through it.
//!
//! `BigVec` is a `Vec` of plain values (`Copy`, so dropping one drops
//! nothing) with only what the capture uses: `push`, reading and writing
//! through a slice, and a shrink that copies only when a quarter or more of
//! the capacity is unused (a huge-page-aligned block cannot be reallocated
//! in place through `std::alloc`).

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Arrays of at least this many bytes are aligned to a huge page and
/// advised: smaller ones would waste most of their only huge page, and
/// usually come from memory the allocator already has.
const HUGE_FROM: usize = HUGE_PAGE;

/// A huge page on x86-64 and aarch64 with 4 KiB base pages.
const HUGE_PAGE: usize = 2 << 20;

/// A growable array of plain values (see the module).
///
/// # Invariants
///
/// * `T` is not zero-sized (checked when the first block is allocated).
/// * `cap == 0` and `ptr` is dangling, or `ptr` is a block from the global
///   allocator with layout [`Self::layout`]`(cap)`.
/// * `len <= cap`, and the first `len` elements are initialized.
pub(crate) struct BigVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
}

impl<T: Copy> BigVec<T> {
    /// An empty array; allocates nothing.
    pub(crate) const fn new() -> Self {
        BigVec {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    /// An empty array with room for `capacity` elements.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut v = Self::new();
        if capacity > 0 {
            v.reallocate(capacity);
        }
        v
    }

    /// A copy of `items`.
    pub(crate) fn from_slice(items: &[T]) -> Self {
        let mut v = Self::with_capacity(items.len());
        // SAFETY: room for `items.len()` elements (just allocated), which
        // cannot overlap the new block.
        unsafe {
            std::ptr::copy_nonoverlapping(items.as_ptr(), v.ptr.as_ptr(), items.len());
        }
        v.len = items.len();
        v
    }

    /// `len` copies of `value`.
    pub(crate) fn filled(value: T, len: usize) -> Self {
        let mut v = Self::with_capacity(len);
        for i in 0..len {
            // SAFETY: `i < len <= cap`: inside the block.
            unsafe { v.ptr.as_ptr().add(i).write(value) };
        }
        v.len = len;
        v
    }

    /// Appends `value`.
    #[inline(always)]
    pub(crate) fn push(&mut self, value: T) {
        if self.len == self.cap {
            self.grow();
        }
        // SAFETY: `len < cap` now: the slot is inside the block.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
    }

    /// Appends a copy of `items`.
    pub(crate) fn extend_from_slice(&mut self, items: &[T]) {
        let len = self
            .len
            .checked_add(items.len())
            .expect("capacity overflow");
        if len > self.cap {
            self.reallocate(len.max(self.cap.saturating_mul(2)));
        }
        // SAFETY: room for `len` elements (above); `items` cannot overlap
        // the block's unused part (nothing else points into it).
        unsafe {
            std::ptr::copy_nonoverlapping(
                items.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                items.len(),
            );
        }
        self.len = len;
    }

    /// Keeps the first `len` elements (all, if there are fewer).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// The number of elements the block has room for.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Gives the unused capacity back when it is a quarter of the block or
    /// more (a copy of the elements; below that, the copy would cost more
    /// than the memory is worth).
    pub(crate) fn shrink_to_fit(&mut self) {
        if self.cap - self.len >= self.cap.div_ceil(4) {
            self.reallocate(self.len);
        }
    }

    /// The same block, read as `U`s: `T` and `U` have one size and one
    /// alignment (checked at compile time), and every `T` is a valid `U`
    /// (the caller's types: pointers read as addresses).
    pub(crate) fn cast<U: Copy>(self) -> BigVec<U> {
        const {
            assert!(size_of::<T>() == size_of::<U>() && align_of::<T>() == align_of::<U>());
        }
        let this = std::mem::ManuallyDrop::new(self);
        // The block's layout is the same for `U` (same size and alignment).
        BigVec {
            ptr: this.ptr.cast(),
            len: this.len,
            cap: this.cap,
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        self.reallocate(self.cap.saturating_mul(2).max(16));
    }

    /// Moves the elements to a new block with room for at least `cap >=
    /// len` elements (none: no block), and frees the old one.
    fn reallocate(&mut self, cap: usize) {
        debug_assert!(cap >= self.len);
        let cap = Self::rounded(cap);
        let new = if cap == 0 {
            NonNull::dangling()
        } else {
            let layout = Self::layout(cap);
            // SAFETY: `layout` has a non-zero size (`cap > 0`, `T` is not
            // zero-sized: `layout` asserts it).
            let block = unsafe { alloc::alloc(layout) };
            let Some(block) = NonNull::new(block.cast::<T>()) else {
                alloc::handle_alloc_error(layout)
            };
            advise_huge_pages(block.cast(), layout);
            // SAFETY: the first `len` elements are initialized (invariant),
            // and fit in the new block (`cap >= len`); two blocks never
            // overlap.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), block.as_ptr(), self.len) };
            block
        };
        self.free();
        self.ptr = new;
        self.cap = cap;
    }

    /// Frees the block, if there is one; leaves `ptr` and `cap` stale.
    fn free(&mut self) {
        if self.cap > 0 {
            // SAFETY: a block of this layout (invariant).
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(self.cap)) };
        }
    }

    /// `cap`, or more elements if that fills the block's last huge page
    /// for at most 1/16 more memory: a huge page is faulted in whole, and a
    /// block that ends inside one leaves its tail to 4 KiB faults. (At one
    /// million objects an array of `u32`s is 4,000,000 bytes: 4.9% more
    /// makes it two whole huge pages.)
    fn rounded(cap: usize) -> usize {
        let bytes = cap.saturating_mul(size_of::<T>());
        if bytes < HUGE_FROM {
            return cap;
        }
        let whole = bytes.next_multiple_of(HUGE_PAGE);
        if whole - bytes <= bytes / 16 {
            whole / size_of::<T>()
        } else {
            cap
        }
    }

    /// The layout of a block of `cap > 0` elements: aligned to a huge page
    /// from [`HUGE_FROM`] bytes on.
    fn layout(cap: usize) -> Layout {
        const { assert!(size_of::<T>() > 0, "BigVec of a zero-sized type") };
        let bytes = cap.checked_mul(size_of::<T>()).expect("capacity overflow");
        let align = if bytes >= HUGE_FROM {
            HUGE_PAGE
        } else {
            align_of::<T>()
        };
        Layout::from_size_align(bytes, align).expect("capacity overflow")
    }
}

impl<T: Copy> Default for BigVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> Drop for BigVec<T> {
    fn drop(&mut self) {
        self.free();
    }
}

impl<T: Copy> Deref for BigVec<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` elements are initialized (invariant);
        // `ptr` is aligned and non-null even when dangling.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for BigVec<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Clone for BigVec<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: Copy> FromIterator<T> for BigVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let items = items.into_iter();
        let mut v = Self::with_capacity(items.size_hint().0);
        for item in items {
            v.push(item);
        }
        v
    }
}

impl<T: Copy> Extend<T> for BigVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<'a, T: Copy> IntoIterator for &'a BigVec<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for BigVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

// SAFETY: a `BigVec` owns its elements as a `Vec` does: sending or sharing
// it sends or shares `T`s.
unsafe impl<T: Copy + Send> Send for BigVec<T> {}
// SAFETY: as above.
unsafe impl<T: Copy + Sync> Sync for BigVec<T> {}

/// Advises a block aligned to a huge page (see the module); smaller blocks,
/// other systems and Miri: nothing. An error is ignored: it is a hint.
#[cfg(all(target_os = "linux", not(miri)))]
fn advise_huge_pages(block: NonNull<u8>, layout: Layout) {
    if layout.align() < HUGE_PAGE {
        return;
    }
    // SAFETY: the range is the block just allocated, whose start is aligned
    // to a huge page (so to a page, as `madvise` requires); the advice
    // changes no content and no mapping, only how later faults are served.
    unsafe { libc::madvise(block.as_ptr().cast(), layout.size(), libc::MADV_HUGEPAGE) };
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn advise_huge_pages(_: NonNull<u8>, _: Layout) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_grow_shrink_cast() {
        let mut v = BigVec::<u32>::new();
        assert_eq!((v.len(), v.capacity()), (0, 0));
        for i in 0..1000 {
            v.push(i);
        }
        assert_eq!(v.len(), 1000);
        assert!(v.iter().copied().eq(0..1000));
        v[7] = 70;
        assert_eq!(v[7], 70);
        // 1024 slots, 24 unused: under a quarter, kept.
        assert_eq!(v.capacity(), 1024);
        v.shrink_to_fit();
        assert_eq!(v.capacity(), 1024);
        let mut w = BigVec::<u32>::with_capacity(100);
        w.push(5);
        w.shrink_to_fit();
        assert_eq!((w.capacity(), &w[..]), (1, &[5][..]));
        let c: BigVec<i32> = BigVec::from_slice(&[u32::MAX, 2]).cast();
        assert_eq!(&c[..], &[-1, 2]);
        assert_eq!(&BigVec::filled(3u8, 4)[..], &[3, 3, 3, 3]);
        let mut d = BigVec::from_slice(&[1u16, 2]);
        d.extend_from_slice(&[3, 4, 5]);
        d.extend([6]);
        let d2 = d.clone();
        assert_eq!(&d2[..], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&(10..13).collect::<BigVec<u8>>()[..], &[10, 11, 12]);
        let mut e = BigVec::<u64>::from_slice(&[]);
        e.shrink_to_fit();
        assert_eq!((e.len(), e.capacity()), (0, 0));
    }

    #[test]
    #[cfg_attr(miri, ignore = "4 MiB blocks: slow under Miri, and not advised there")]
    fn huge_blocks_are_aligned_and_usable() {
        let n = 2 * HUGE_PAGE / 4 - 100;
        let mut v = BigVec::<u32>::with_capacity(n);
        assert_eq!(v.as_ptr() as usize % HUGE_PAGE, 0);
        // Rounded up to two whole huge pages (400 bytes more).
        assert_eq!(v.capacity(), 2 * HUGE_PAGE / 4);
        // Not rounded: 3 huge pages would be 50% more.
        assert_eq!(
            BigVec::<u32>::with_capacity(HUGE_PAGE / 4 + 1).capacity(),
            HUGE_PAGE / 4 + 1
        );
        for i in 0..v.capacity() as u32 {
            v.push(i);
        }
        v.push(0); // grows: a new aligned block, the elements copied
        assert_eq!(v.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(v[n - 1], n as u32 - 1);
        assert_eq!(v.len(), 2 * HUGE_PAGE / 4 + 1);
        v.truncate(10);
        v.shrink_to_fit(); // small again: an ordinary block
        assert_eq!(&v[..3], &[0, 1, 2]);
    }
}
