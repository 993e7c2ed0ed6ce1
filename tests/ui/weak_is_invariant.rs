// The same for `WeakGc`, whose `upgrade` makes a `Gc`.
use rcycle::WeakGc;

fn shorten<'a>(w: WeakGc<&'static str>) -> WeakGc<&'a str> {
    w
}

fn main() {
    let _ = shorten(WeakGc::new());
}
