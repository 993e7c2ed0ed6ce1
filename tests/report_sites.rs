//! Allocation sites (cargo feature `sites`): objects grouped by the line
//! that allocated them. Run with `cargo test --features sites`.
#![cfg(feature = "sites")]

use rcycle::report::live_report_by_site;
use rcycle::{collect, Gc, Trace};

#[derive(Trace)]
struct Iq {
    #[trace(skip)]
    payload: [u8; 112],
}

/// The line of the `Gc::new` in `send`.
const IQ_LINE: u32 = line!() + 3;

fn send(n: usize) -> Vec<Gc<Iq>> {
    (0..n).map(|_| Gc::new(Iq { payload: [7; 112] })).collect()
}

#[test]
fn objects_are_grouped_by_the_line_that_made_them() {
    collect();
    let iqs = send(2002);
    let line = IQ_LINE;
    let names: Vec<Gc<String>> = (0..3).map(|i| Gc::new(format!("n{i}"))).collect();
    let report = live_report_by_site();
    let iq_row = report
        .rows()
        .iter()
        .find(|r| r.site == format!("tests/report_sites.rs:{line}"))
        .unwrap_or_else(|| panic!("no row for line {line}:\n{report}"));
    assert_eq!(iq_row.count, 2002);
    assert_eq!(iq_row.size, 2002 * 128, "16-byte header + 112-byte payload");
    assert_eq!(report.rows()[0], *iq_row, "largest first");
    let text = report.to_string();
    assert!(
        text.contains(&format!(
            "tests/report_sites.rs:{line}: size=250 KiB, count=2002, average=128 B"
        )),
        "{text}"
    );
    let names_row = report.rows().iter().find(|r| r.count == 3).unwrap();
    assert!(names_row.site.starts_with("tests/report_sites.rs:"));
    assert_eq!(iqs[0].payload[0] as usize + names.len(), 10);
    drop(iqs);
    assert!(
        live_report_by_site().rows().iter().all(|r| r.count != 2002),
        "freed objects leave"
    );
}

/// A cycle member whose `heap_size` collects (safe code may): the first one
/// measured collects, pinned by the report, so its own cycle survives and
/// the other cycles go before the report reaches them (issue 19, section 2).
#[test]
fn a_heap_size_impl_that_collects_during_the_site_report() {
    use std::cell::{Cell, RefCell};
    thread_local! {
        static MEASURED: Cell<usize> = const { Cell::new(0) };
    }
    struct Collects {
        next: RefCell<Option<Gc<Collects>>>,
    }
    // SAFETY: reports `next` once.
    unsafe impl Trace for Collects {
        fn trace(&self, t: &mut rcycle::Tracer<'_>) {
            t.field("next", &self.next);
        }
        fn heap_size(&self) -> usize {
            if MEASURED.replace(MEASURED.get() + 1) == 0 {
                collect();
            }
            0
        }
    }
    collect();
    let base = rcycle::object_count();
    for _ in 0..3 {
        let a = Gc::new(Collects {
            next: RefCell::new(None),
        });
        let b = Gc::new(Collects {
            next: RefCell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b);
    }
    let report = live_report_by_site();
    assert_eq!(
        MEASURED.get(),
        2,
        "the first one measured, then its partner"
    );
    let counted: usize = report
        .rows()
        .iter()
        .filter(|r| r.site.starts_with("tests/report_sites.rs:"))
        .map(|r| r.count)
        .sum();
    assert_eq!(counted, 2);
    assert_eq!(rcycle::object_count(), base + 2);
    assert_eq!(collect(), 2);
    assert_eq!(rcycle::object_count(), base);
}

/// The helper constructor every request goes through: its line is the same
/// for all of them.
const HELPER_LINE: u32 = line!() + 3;
#[inline(never)]
fn make_request() -> Gc<Iq> {
    Gc::new(Iq { payload: [1; 112] })
}

const FROM_A: u32 = line!() + 3;
#[inline(never)]
fn from_a(out: &mut Vec<Gc<Iq>>) {
    out.push(make_request());
}

const FROM_B: u32 = line!() + 3;
#[inline(never)]
fn from_b(out: &mut Vec<Gc<Iq>>) {
    out.push(make_request());
}

/// One line cannot tell two callers of a helper apart; two frames can
/// (tracemalloc's `nframe`).
#[test]
fn two_frames_tell_the_callers_of_a_helper_apart() {
    collect();
    rcycle::report::set_site_frames(2);
    assert_eq!(rcycle::report::site_frames(), 2);
    let mut kept = Vec::new();
    for _ in 0..3 {
        from_a(&mut kept);
    }
    for _ in 0..2 {
        from_b(&mut kept);
    }
    rcycle::report::set_site_frames(1);
    let by_line = live_report_by_site();
    let helper = format!("tests/report_sites.rs:{HELPER_LINE}");
    let row = by_line.rows().iter().find(|r| r.site == helper).unwrap();
    assert_eq!(row.count, 5, "{by_line}");
    let by_stack = rcycle::report::live_report_by_stack();
    let stacks: Vec<(usize, Vec<String>)> = by_stack
        .rows()
        .iter()
        .filter(|r| r.site == helper)
        .map(|r| (r.count, r.stack.clone()))
        .collect();
    assert_eq!(
        stacks,
        [
            (
                3,
                vec![helper.clone(), format!("tests/report_sites.rs:{FROM_A}")]
            ),
            (
                2,
                vec![helper.clone(), format!("tests/report_sites.rs:{FROM_B}")]
            ),
        ],
        "{by_stack}"
    );
    let text = by_stack.to_string();
    assert!(
        text.contains(&format!(
            "{helper}: size=384 B, count=3, average=128 B\n    tests/report_sites.rs:{FROM_A}\n"
        )),
        "{text}"
    );
    drop(kept);
}

#[derive(Trace)]
struct Holder {
    iqs: Vec<Gc<Iq>>,
}

/// The suspects report and the leak checks say where the accumulated
/// objects were made.
#[test]
fn suspects_name_the_line_that_made_what_accumulates() {
    collect();
    let holder = Gc::new(Holder { iqs: send(40) });
    let line = format!("tests/report_sites.rs:{IQ_LINE}");
    let suspects = rcycle::report::leak_suspects();
    let group = &suspects.suspects()[0].accumulated[0];
    assert_eq!((group.path.as_str(), group.count), (".iqs[*]", 40));
    assert_eq!(group.site, Some((line.clone(), 40)));
    assert!(suspects
        .to_string()
        .contains(&format!("     (40 allocated at {line})\n")));
    let check = rcycle::report::LeakCheck::start();
    let more = send(2);
    let report = check.finish().unwrap_err();
    assert_eq!(report.held_by()[0].site, Some((line, 2)));
    drop((holder, more));
}
