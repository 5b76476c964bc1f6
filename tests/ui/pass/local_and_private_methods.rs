//! `#[actor(local)]` keeps a `pub` method off the by-name table, so its arguments and
//! result need not be serializable; private methods and associated functions are not
//! callable by name either.
use std::sync::Arc;

use gobs_runtime::{Vat, define_actor};

/// Not serializable.
pub struct Shape {
    pub sides: u32,
}

#[define_actor]
#[derive(Default)]
pub struct Canvas {
    sides: u32,
}

#[define_actor]
impl Canvas {
    /// Callable by name.
    pub fn sides(&self) -> u32 {
        self.sides
    }

    /// Near calls and sends only.
    #[actor(local)]
    pub fn draw(&mut self, shape: Arc<Shape>) -> Arc<Shape> {
        self.sides += shape.sides;
        shape
    }

    fn secret(&self) -> u32 {
        self.sides * 2
    }

    /// Not a message: no `self`.
    pub fn blank() -> Self {
        Canvas::default()
    }

    /// Calls a private method from a message.
    pub fn doubled(&self) -> u32 {
        self.secret()
    }
}

fn main() {
    let vat = Vat::spawn("local").unwrap();
    let canvas = vat.spawn_actor(Canvas::blank()).unwrap();
    let c = canvas.clone();
    let drawn = vat
        .run(move || c.call().draw(Arc::new(Shape { sides: 3 })).unwrap().sides)
        .unwrap();
    assert_eq!(drawn, 3);
    canvas.send().draw(Arc::new(Shape { sides: 4 })).wait().unwrap();
    assert_eq!(canvas.send().doubled().wait().unwrap(), 14);
    let names: Vec<&str> = canvas.methods().iter().map(|m| m.name).collect();
    assert_eq!(names, ["sides", "doubled"]);
    vat.shutdown();
}
