//! Live objects grouped by allocation site [tracemalloc, heapy `byprod`].
//!
//! Only with the cargo feature `sites`: `Gc::new` is `#[track_caller]`, and
//! the heap then records each object's `Location`. Without the feature
//! nothing is recorded and this module does not exist.

use std::fmt;

use crate::runtime::heap;

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
    /// `src/dispatch.rs:42: size=251 KiB, count=2002, average=128 B`.
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
    let heap = heap();
    let mut by_site: std::collections::HashMap<String, (usize, usize)> = Default::default();
    super::live::walk_measured(
        heap,
        // Dead boxes are not counted here.
        // SAFETY: `walk_measured` passes readable headers.
        |header, _| unsafe { header.as_ref() }.value_alive(),
        |header, _, info, value| {
            let owned = match value {
                super::live::Value::Measured(owned) => owned,
                super::live::Value::LentOut | super::live::Value::Dead => 0,
            };
            let site = match heap.site_of(header) {
                Some(l) => format!("{}:{}", l.file(), l.line()),
                None => "<unknown>".to_string(),
            };
            let entry = by_site.entry(site).or_default();
            entry.0 += 1;
            entry.1 += info.alloc_size + owned;
        },
    );
    let mut rows: Vec<SiteRow> = by_site
        .into_iter()
        .map(|(site, (count, size))| SiteRow { site, count, size })
        .collect();
    rows.sort_by(|a, b| b.size.cmp(&a.size).then(a.site.cmp(&b.site)));
    SiteReport { rows }
}
