//! Allocation sites (cargo feature `sites`): objects grouped by the line
//! that allocated them. Run with `cargo test --features sites`.
#![cfg(feature = "sites")]

use rcycle::{collect, live_report_by_site, Gc, Trace};

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
