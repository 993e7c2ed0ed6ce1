//! Live objects grouped by allocation site [tracemalloc, heapy `byprod`].
//!
//! Only with the cargo feature `sites`: `Gc::new` is `#[track_caller]`, and
//! the heap then records each object's `Location`. Without the feature
//! nothing is recorded and this module does not exist.

use std::fmt;

use crate::runtime::query;

/// The live objects allocated at one source location.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SiteRow {
    /// `file:line` of the `Gc::new` call (`<unknown>` if not recorded).
    pub site: String,
    /// Number of live objects allocated there.
    pub count: usize,
    /// Their total size in bytes (objects plus the heap memory they own).
    pub size: usize,
    /// With [`live_report_by_stack`]: the call stack, innermost frame first
    /// (`site` is the first), at most [`site_frames`] frames; otherwise
    /// empty.
    pub stack: Vec<String>,
}

/// Live objects grouped by allocation site, largest total size first; see
/// [`live_report_by_site`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SiteReport {
    rows: Vec<SiteRow>,
}

impl SiteReport {
    /// The rows, largest total size first.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u64);
    /// let report = rcycle::report::live_report_by_site();
    /// assert!(report.rows()[0].site.contains(".rs:"));
    /// ```
    pub fn rows(&self) -> &[SiteRow] {
        &self.rows
    }
}

/// Sizes like tracemalloc: `512 B`, `251 KiB`, `3 MiB`.
fn human(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 10 * 1024 && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    format!("{value} {}", UNITS[unit])
}

impl fmt::Display for SiteReport {
    /// One line per site, tracemalloc's format:
    /// `src/dispatch.rs:42: size=251 KiB, count=2002, average=128 B`; a
    /// row with a stack lists the outer frames below it, indented.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.rows {
            writeln!(
                f,
                "{}: size={}, count={}, average={}",
                row.site,
                human(row.size),
                row.count,
                human(row.size / row.count.max(1))
            )?;
            for frame in row.stack.iter().skip(1) {
                writeln!(f, "    {frame}")?;
            }
        }
        Ok(())
    }
}

/// Live objects of this thread grouped by the source line that allocated
/// them (cargo feature `sites`).
///
/// ```
/// use rcycle::Gc;
/// let requests: Vec<Gc<[u8; 112]>> = (0..3).map(|_| Gc::new([0; 112])).collect();
/// let report = rcycle::report::live_report_by_site();
/// let row = report.rows().iter().find(|r| r.count == 3).unwrap();
/// assert_eq!(row.size, 3 * 128);
/// assert!(report.to_string().contains("count=3, average=128 B"));
/// ```
pub fn live_report_by_site() -> SiteReport {
    let rt = query();
    let heap = &rt.heap;
    let mut by_site: std::collections::HashMap<String, (usize, usize)> = Default::default();
    each_live_object(heap, |header, size| {
        let entry = by_site.entry(line_of(heap, header)).or_default();
        entry.0 += 1;
        entry.1 += size;
    });
    let mut rows: Vec<SiteRow> = by_site
        .into_iter()
        .map(|(site, (count, size))| SiteRow {
            site,
            count,
            size,
            stack: Vec::new(),
        })
        .collect();
    rows.sort_by(|a, b| b.size.cmp(&a.size).then(a.site.cmp(&b.site)));
    SiteReport { rows }
}

/// Calls `each(header, size)` for every live object of `heap` with its value
/// (dead boxes are not counted), measured as the live report measures it.
fn each_live_object(
    heap: &crate::heap::Heap,
    mut each: impl FnMut(std::ptr::NonNull<crate::header::Header>, usize),
) {
    super::live::walk_measured(
        heap,
        // SAFETY: `walk_measured` passes readable headers.
        |header, _| unsafe { header.as_ref() }.value_alive(),
        |header, _, info, value| {
            let owned = match value {
                super::live::Value::Measured(owned) => owned,
                super::live::Value::LentOut | super::live::Value::Dead => 0,
            };
            // SAFETY: an allocated object of this type (as above).
            each(header, unsafe { info.alloc_size_of(header) } + owned);
        },
    );
}

/// `file:line` of the object's `Gc::new` call, or `<unknown>`.
fn line_of(heap: &crate::heap::Heap, header: std::ptr::NonNull<crate::header::Header>) -> String {
    match heap.site_of(header) {
        Some(l) => format!("{}:{}", l.file(), l.line()),
        None => "<unknown>".to_string(),
    }
}

/// Records up to `frames` frames of the call stack with every object this
/// thread allocates from now on (tracemalloc's `nframe`; at least 1, and 1,
/// the default, records the line of the `Gc::new` call only), for
/// [`live_report_by_stack`]. A frame costs a step of a stack walk at each
/// allocation (measured in benches/notes.md); symbols are looked up only
/// when a report is made.
///
/// ```
/// # use rcycle::Gc;
/// #[inline(never)]
/// fn make_request(id: u64) -> Gc<u64> {
///     Gc::new(id) // every request is made on this line
/// }
/// rcycle::report::set_site_frames(4);
/// let kept: Vec<Gc<u64>> = (0..3).map(make_request).collect();
/// let report = rcycle::report::live_report_by_stack();
/// let row = report.rows().iter().find(|r| r.count == 3).unwrap();
/// assert!(row.stack.len() >= 2); // the helper's line, and who called it
/// rcycle::report::set_site_frames(1);
/// ```
pub fn set_site_frames(frames: usize) {
    query().heap.set_site_frames(frames)
}

/// How many frames this thread's allocations record (see
/// [`set_site_frames`]).
///
/// ```
/// assert_eq!(rcycle::report::site_frames(), 1);
/// ```
pub fn site_frames() -> usize {
    query().heap.site_frames()
}

/// Live objects of this thread grouped by the call stack that allocated them
/// (tracemalloc's `statistics('traceback')`: each stack as deep as
/// [`set_site_frames`] asked when it was recorded), largest total size first;
/// objects made without a stack (before [`set_site_frames`] asked for more
/// than one frame) are grouped by their line, as [`live_report_by_site`]
/// does. Frames inside rcycle are left out; a frame is `file:line` where
/// debug information says it, else the function's name, else its address.
///
/// ```
/// # use rcycle::Gc;
/// rcycle::report::set_site_frames(3);
/// let a = Gc::new(1u8);
/// let report = rcycle::report::live_report_by_stack();
/// assert!(report.rows().iter().any(|r| r.count == 1 && !r.stack.is_empty()));
/// rcycle::report::set_site_frames(1);
/// ```
pub fn live_report_by_stack() -> SiteReport {
    let rt = query();
    let heap = &rt.heap;
    // Objects by stack number (or by line, for those without a stack).
    let mut by_stack: std::collections::HashMap<u32, (usize, usize)> = Default::default();
    let mut by_line: std::collections::HashMap<String, (usize, usize)> = Default::default();
    each_live_object(heap, |header, size| {
        let entry = match heap.site_stack_number(header) {
            Some(number) => by_stack.entry(number).or_default(),
            None => by_line.entry(line_of(heap, header)).or_default(),
        };
        entry.0 += 1;
        entry.1 += size;
    });
    let mut symbols = FrameNames::default();
    let mut merged: std::collections::HashMap<Vec<String>, (usize, usize)> = Default::default();
    for (number, (count, size)) in by_stack {
        let (frames, ips) = heap.site_stack(number);
        let stack = symbols.stack(&ips, frames);
        let entry = merged.entry(stack).or_default();
        entry.0 += count;
        entry.1 += size;
    }
    let mut rows: Vec<SiteRow> = merged
        .into_iter()
        .map(|(stack, (count, size))| SiteRow {
            site: stack.first().cloned().unwrap_or_else(|| "<unknown>".into()),
            count,
            size,
            stack,
        })
        .chain(by_line.into_iter().map(|(site, (count, size))| SiteRow {
            site,
            count,
            size,
            stack: Vec::new(),
        }))
        .collect();
    rows.sort_by(|a, b| {
        b.size
            .cmp(&a.size)
            .then(a.site.cmp(&b.site))
            .then(a.stack.cmp(&b.stack))
    });
    SiteReport { rows }
}

/// Symbol lookups for [`live_report_by_stack`] and the DevTools export's
/// allocation stacks, each address looked up once.
#[derive(Default)]
pub(super) struct FrameNames {
    /// The frames an address stands for (several where calls were inlined),
    /// innermost first, each with whether it is inside rcycle.
    known: std::collections::HashMap<usize, Vec<(String, bool)>>,
}

impl FrameNames {
    /// Where the object at `header` was allocated, innermost frame first:
    /// its recorded stack, else its line, else `None`. Reads the heap's
    /// site table only (the address is not dereferenced).
    pub(super) fn site_frames(
        &mut self,
        heap: &crate::heap::Heap,
        header: std::ptr::NonNull<crate::header::Header>,
    ) -> Option<Vec<String>> {
        if let Some(number) = heap.site_stack_number(header) {
            let (frames, ips) = heap.site_stack(number);
            return Some(self.stack(&ips, frames));
        }
        let line = heap.site_of(header)?;
        Some(vec![format!("{}:{}", line.file(), line.line())])
    }

    /// The first `frames` frames of a stack outside rcycle.
    fn stack(&mut self, ips: &[usize], frames: usize) -> Vec<String> {
        let mut out = Vec::new();
        for &ip in ips {
            let names = self.known.entry(ip).or_insert_with(|| resolve(ip));
            for (name, internal) in names.iter() {
                if !internal && out.len() < frames {
                    out.push(name.clone());
                }
            }
            if out.len() == frames {
                break;
            }
        }
        out
    }
}

/// `file` relative to the current directory when it lies below it (debug
/// information names files by absolute path; `Location` as given to the
/// compiler, relative to the package for its own files).
fn relative(file: &std::path::Path) -> &std::path::Path {
    std::env::current_dir()
        .ok()
        .and_then(|dir| file.strip_prefix(dir).ok())
        .unwrap_or(file)
}

/// The frames at instruction address `ip` (innermost first), each with
/// whether it belongs to rcycle or the stack walker.
fn resolve(ip: usize) -> Vec<(String, bool)> {
    let mut frames = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        let name = symbol.name().map(|n| format!("{n:#}"));
        let internal = name.as_deref().is_some_and(|n| {
            n.starts_with("rcycle::") || n.starts_with("<rcycle::") || n.starts_with("backtrace::")
        });
        let text = match (symbol.filename(), symbol.lineno(), &name) {
            (Some(file), Some(line), _) => format!("{}:{line}", relative(file).display()),
            (_, _, Some(name)) => name.clone(),
            _ => format!("{ip:#x}"),
        };
        frames.push((text, internal));
    });
    if frames.is_empty() {
        frames.push((format!("{ip:#x}"), false));
    }
    frames
}
