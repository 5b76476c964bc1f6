//! The objects the OCapN conformance suite expects a test peer to expose, at the swiss
//! numbers its README gives: car-factory builder, echo (GC), greeter, promise resolver and
//! sturdyref enlivener.

use crate::captp::Term;
use crate::locator::Sturdyref;
use crate::node::{Core, Cx};
use crate::syrup::Value;

/// Swiss number of the car-factory builder.
pub const CAR_FACTORY_BUILDER: &[u8] = b"JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ";
/// Swiss number of the echo object.
pub const ECHO_GC: &[u8] = b"IO58l1laTyhcrgDKbEzFOO32MDd6zE5w";
/// Swiss number of the greeter.
pub const GREETER: &[u8] = b"VMDDd1voKWarCe2GvgLbxbVFysNzRPzx";
/// Swiss number of the promise resolver.
pub const PROMISE_RESOLVER: &[u8] = b"IokCxYmMj04nos2JN1TDoY1bT8dXh6Lr";
/// Swiss number of the sturdyref enlivener.
pub const STURDYREF_ENLIVENER: &[u8] = b"gi02I1qghIwPiKGKleCQAOhpy3ZtYRpB";

fn error(msg: &str) -> Term {
    Term::str(msg)
}

/// Hosts the five fixtures on `core` and binds them to their swiss numbers.
pub fn install(core: &mut Core) {
    let builder = core.spawn(Box::new(|cx: &mut Cx<'_>, _args: Vec<Term>| {
        Ok(cx.spawn(car_factory))
    }));
    core.bind_swiss(CAR_FACTORY_BUILDER, builder);

    // Returns its arguments, holding on to nothing.
    let echo = core.spawn(Box::new(|_cx: &mut Cx<'_>, args: Vec<Term>| {
        Ok(Term::List(args))
    }));
    core.bind_swiss(ECHO_GC, echo);

    // Sends "Hello" (an op:deliver whose promise it drops) to the object it is given.
    let greeter = core.spawn(Box::new(|cx: &mut Cx<'_>, args: Vec<Term>| {
        let Some(Term::Ref(to)) = args.into_iter().next() else {
            return Err(error("the greeter takes a reference to greet"));
        };
        let _dropped = cx.send(&to, vec![Term::str("Hello")]);
        Ok(Term::Data(Value::Bool(true)))
    }));
    core.bind_swiss(GREETER, greeter);

    // Returns a fresh [promise resolver] pair.
    let resolver = core.spawn(Box::new(|cx: &mut Cx<'_>, _args: Vec<Term>| {
        let (p, r) = cx.promise();
        Ok(Term::List(vec![Term::local(p), Term::local(r)]))
    }));
    core.bind_swiss(PROMISE_RESOLVER, resolver);

    // Takes an <ocapn-sturdyref ...> and returns a live reference to its object.
    let enlivener = core.spawn(Box::new(|cx: &mut Cx<'_>, args: Vec<Term>| {
        let sturdyref = args
            .first()
            .and_then(Term::to_value)
            .ok_or_else(|| error("the enlivener takes an <ocapn-sturdyref ...>"))
            .and_then(|v| Sturdyref::from_value(&v).map_err(|e| error(&e.to_string())))?;
        Ok(Term::local(cx.enliven(&sturdyref)))
    }));
    core.bind_swiss(STURDYREF_ENLIVENER, enlivener);
}

/// Each argument is `[color model]` (two symbols); makes one car per argument (the car
/// itself for one argument, a list of cars for several).
fn car_factory(cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
    let mut cars = Vec::new();
    for spec in &args {
        let (color, model) = match spec {
            Term::List(l) => match l.as_slice() {
                [c, m] => match (c.as_symbol(), m.as_symbol()) {
                    (Some(c), Some(m)) => (c.to_owned(), m.to_owned()),
                    _ => return Err(error("a car is [color model], two symbols")),
                },
                _ => return Err(error("a car is [color model], two symbols")),
            },
            _ => return Err(error("a car is [color model], two symbols")),
        };
        let car = move |_cx: &mut Cx<'_>, _args: Vec<Term>| {
            Ok(Term::str(&format!("Vroom! I am a {color} {model} car!")))
        };
        cars.push(cx.spawn(car));
    }
    match cars.len() {
        0 => Err(error("the car factory takes at least one [color model]")),
        1 => Ok(cars.remove(0)),
        _ => Ok(Term::List(cars)),
    }
}
