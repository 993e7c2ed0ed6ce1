// A `Gc<&'static str>` may not become a `Gc<&'a str>`: `objects::<&'static
// str>()` would hand out the object typed as it was made, and a value stored
// through `get_mut` under the shorter lifetime would outlive its borrow
// (issue 19, section 1).
use rcycle::Gc;

fn shorten<'a>(g: Gc<&'static str>) -> Gc<&'a str> {
    g
}

fn main() {
    let _ = shorten(Gc::new("static"));
}
