//! A message may answer with a `Promise<T>` (or `Result<Promise<T>, E>`): its senders get
//! a `Promise<T>`, its near callers the promise itself; a `Promise<Ref<T>>` pipelines.
use gobs_runtime::{Promise, Ref, Vat, define_actor, spawn, spawn_blocking};

#[define_actor]
#[derive(Default)]
pub struct Slow {
    made: u32,
}

#[define_actor]
impl Slow {
    pub fn later(&self) -> Promise<u32> {
        spawn_blocking(|| 42)
    }

    pub fn maybe(&self, ok: bool) -> Result<Promise<String>, String> {
        if ok {
            Ok(Promise::fulfilled("yes".into()))
        } else {
            Err("no".into())
        }
    }

    pub fn child(&mut self) -> Promise<Ref<Slow>> {
        self.made += 1;
        Promise::fulfilled(spawn(Slow::default()))
    }
}

fn main() {
    let vat = Vat::spawn("promise-results").unwrap();
    let s = vat.spawn_actor(Slow::default()).unwrap();
    let later: Promise<u32> = s.send().later();
    assert_eq!(later.wait().unwrap(), 42);
    let maybe: Promise<String> = s.send().maybe(true);
    assert_eq!(maybe.wait().unwrap(), "yes");
    let grandchild = s.send().child().pipeline().send().later();
    assert_eq!(grandchild.wait().unwrap(), 42);
    vat.shutdown();
}
