//! Feature `serde`: every report type serializes (here to JSON), with the
//! field names of its Rust type.
#![cfg(feature = "serde")]

use std::cell::RefCell;
use std::collections::HashMap;

use rcycle::{Gc, Trace};

#[derive(Trace)]
struct Iq {
    id: u64,
}

#[derive(Trace)]
struct Dispatcher {
    expected: RefCell<HashMap<u64, Gc<Iq>>>,
}

#[derive(Trace)]
struct Ring {
    next: RefCell<Option<Gc<Ring>>>,
}

#[test]
fn reports_serialize_to_json() {
    rcycle::disable();
    let d = Gc::new(Dispatcher {
        expected: RefCell::new(HashMap::new()),
    });
    for id in 0..3 {
        d.expected.borrow_mut().insert(id, Gc::new(Iq { id }));
    }
    let live = serde_json::to_value(rcycle::live_report()).unwrap();
    let rows = live["rows"].as_array().unwrap();
    assert_eq!(rows[0]["kind"], "report_serde::Dispatcher");
    assert_eq!(rows[1]["kind"], "report_serde::Iq");
    assert_eq!(rows[1]["count"], 3);
    assert_eq!(rows[1]["size"], 72);

    let iq = d.expected.borrow()[&1].clone();
    let chain = serde_json::to_value(rcycle::why_alive(&iq).unwrap()).unwrap();
    assert_eq!(chain["links"][1]["label"], ".expected[1]");
    assert_eq!(chain["links"][1]["object"]["type_name"], "report_serde::Iq");
    drop(iq);

    let suspects = serde_json::to_value(rcycle::report::leak_suspects()).unwrap();
    assert_eq!(
        suspects["suspects"][0]["accumulated"][0]["path"],
        ".expected[*]"
    );
    assert_eq!(suspects["suspects"][0]["accumulated"][0]["count"], 3);

    let r = Gc::new(Ring {
        next: RefCell::new(None),
    });
    *r.next.borrow_mut() = Some(r.clone());
    drop(r);
    let dry = serde_json::to_value(rcycle::collect_dry_run()).unwrap();
    assert_eq!(
        dry["garbage"]["by_type"][0]["type_name"],
        "report_serde::Ring"
    );
    let stats = serde_json::to_value(rcycle::collect_with_stats()).unwrap();
    assert_eq!(stats["freed"], 1);
    let growth = serde_json::to_value(rcycle::Snapshot::take().changes()).unwrap();
    assert_eq!(growth["rows"].as_array().unwrap().len(), 0);
    drop(d);
    rcycle::enable();
}
