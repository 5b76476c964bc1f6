//! How code reaches the actors of a vat's table: near calls (shared or exclusive, checked
//! for type, place and re-entry), calls by name, and what persistence reads and writes.

use std::any::TypeId;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;

use crate::actor::Actor;
use crate::entry::{ActorEntry, ActorSlot, Restored};
use crate::error::Error;
use crate::job::Envelope;
use crate::methods::{self, DispatchError, MethodKind};
use crate::portrait::ActorId;
use crate::reference::Ref;
use crate::vat::core::{ChurnHook, VatCore};
use crate::vat::journal::Effect;
use crate::vat::shared::{Hold, VatShared};
use crate::vat::slot::{AnyTask, Slot};

impl VatCore {
    pub(crate) fn spawn<T: Actor>(
        &self,
        actor: T,
        site: &'static Location<'static>,
    ) -> Result<Ref<T>, Box<Error>> {
        if let Some(hook) = self.hook.borrow().as_ref() {
            hook.check_spawn(self, T::entry()).map_err(Box::new)?;
        }
        let id = ActorId(self.next_id.get());
        self.next_id.set(id.0 + 1);
        let hold = Hold::unlisted(&self.shared, id);
        self.insert(id, Slot::spawned(actor, self.journal.epoch(), &hold));
        self.journal.spawned(id, site);
        Ok(Ref::with_hold(self.shared.clone(), id, hold))
    }

    /// Checks that `target` lives in this vat.
    pub(crate) fn check_here<T: Actor>(&self, target: &Ref<T>) -> Result<(), Box<Error>> {
        if target.vat.id == self.shared.id {
            Ok(())
        } else {
            Err(self.far_call(target))
        }
    }

    #[cold]
    fn far_call<T: Actor>(&self, target: &Ref<T>) -> Box<Error> {
        Box::new(Error::FarCall {
            actor: target.describe(),
            vat: target.vat.name.clone(),
            current: self.shared.name.clone(),
        })
    }

    /// `Counter#3 in vat "main"` for an actor of this vat.
    pub(crate) fn describe<T: Actor>(&self, id: ActorId) -> String {
        self.describe_named(T::type_name(), id)
    }

    /// How errors name actor `id` of this vat, a `type_name` (what a near reference's
    /// `describe` says), made only when an error needs it.
    pub(crate) fn describe_named(&self, type_name: &str, id: ActorId) -> String {
        format!("{}{} in vat \"{}\"", type_name, id, self.shared.name)
    }

    #[cold]
    fn missing<T: Actor>(&self, id: ActorId) -> Box<Error> {
        Box::new(Error::NoSuchActor {
            actor: self.describe::<T>(id),
        })
    }

    #[cold]
    fn busy<T: Actor>(&self, id: ActorId) -> Box<Error> {
        Box::new(Error::Reentrant {
            actor: self.describe::<T>(id),
        })
    }

    /// The slot of actor `id` of this vat. Whether it holds a `T` is checked by the caller,
    /// once (see [`Slot::typed`]).
    fn slot_of<T: Actor>(&self, id: ActorId) -> Result<Rc<ActorSlot>, Box<Error>> {
        self.find(id)?.ok_or_else(|| self.missing::<T>(id))
    }

    /// Calls `f` on the actor with shared access (no snapshot: it cannot change).
    pub(crate) fn invoke_ref<T: Actor, R>(
        &self,
        target: &Ref<T>,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, Box<Error>> {
        self.check_here(target)?;
        self.invoke_ref_here(target.id, f)
    }

    /// Calls `f` on the actor with exclusive access, snapshotting it first in this turn.
    pub(crate) fn invoke_mut<T: Actor, R>(
        &self,
        target: &Ref<T>,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, Box<Error>> {
        self.check_here(target)?;
        self.invoke_mut_here(target.id, f)
    }

    /// [`invoke_ref`](Self::invoke_ref) for an actor known to live in this vat.
    pub(crate) fn invoke_ref_here<T: Actor, R>(
        &self,
        id: ActorId,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, Box<Error>> {
        let slot = self.slot_of::<T>(id)?;
        let typed = slot.typed::<T>().ok_or_else(|| self.missing::<T>(id))?;
        let guard = typed.actor.try_borrow().map_err(|_| self.busy::<T>(id))?;
        let outer = self.current_actor.replace(Some(id));
        let r = f(&*guard);
        self.current_actor.set(outer);
        Ok(r)
    }

    /// [`invoke_mut`](Self::invoke_mut) for an actor known to live in this vat.
    pub(crate) fn invoke_mut_here<T: Actor, R>(
        &self,
        id: ActorId,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, Box<Error>> {
        let slot = self.slot_of::<T>(id)?;
        let typed = slot.typed::<T>().ok_or_else(|| self.missing::<T>(id))?;
        let mut guard = typed
            .actor
            .try_borrow_mut()
            .map_err(|_| self.busy::<T>(id))?;
        self.journal.touch_typed(id, &slot, typed, &mut *guard);
        let outer = self.current_actor.replace(Some(id));
        let r = f(&mut *guard);
        self.current_actor.set(outer);
        Ok(r)
    }

    /// Calls a method by name on actor `id` of this vat (see `AnyRef::invoke`).
    pub(crate) fn invoke_by_name(
        &self,
        id: ActorId,
        describe: &dyn Fn() -> String,
        method: &str,
        args: &[u8],
    ) -> Result<crate::methods::Reply, Error> {
        let missing = || Error::NoSuchActor { actor: describe() };
        let busy = || Error::Reentrant { actor: describe() };
        let slot = self.find(id).map_err(|e| *e)?.ok_or_else(missing)?;
        let methods = slot.actor.try_borrow().map_err(|_| busy())?.methods_any();
        let kind = methods::method_kind(methods, method)
            .ok_or_else(|| methods::unknown_method(&describe(), method, methods))?;
        let outer = self.current_actor.replace(Some(id));
        let result = match kind {
            MethodKind::Read => {
                let guard = slot.actor.try_borrow().map_err(|_| busy())?;
                guard.dispatch_read_any(method, args)
            }
            MethodKind::Write => {
                let mut guard = slot.actor.try_borrow_mut().map_err(|_| busy())?;
                self.journal.touch(id, &slot, &mut *guard);
                guard.dispatch_write_any(method, args)
            }
        };
        self.current_actor.set(outer);
        result.map_err(|e| match e {
            DispatchError::UnknownMethod(m) => methods::unknown_method(&describe(), &m, methods),
            DispatchError::BadArguments {
                method,
                expected,
                detail,
            } => Error::Dispatch {
                actor: describe(),
                detail: format!("bad arguments for `{method}({expected})`: {detail}"),
            },
            DispatchError::BadResult(detail) => Error::Dispatch {
                actor: describe(),
                detail: format!("the result of `{method}` cannot be encoded: {detail}"),
            },
            DispatchError::RefInResult { reference } => Error::RefByName {
                actor: describe(),
                method: method.to_string(),
                reference,
            },
            DispatchError::Failed(e) => Error::actor(describe(), e),
        })
    }

    // --- what persistence reads and writes ----------------------------------------------

    pub(crate) fn install_hook(&self, hook: Box<dyn ChurnHook>) {
        *self.hook.borrow_mut() = Some(hook);
    }

    /// Runs `f` on the persistence hook, if it is an `H`.
    pub(crate) fn with_hook<H: 'static, R>(&self, f: impl FnOnce(&mut H) -> R) -> Option<R> {
        let mut hook = self.hook.borrow_mut();
        hook.as_mut()?.as_any_mut().downcast_mut::<H>().map(f)
    }

    /// The portrait of actor `id`: its entry and saved arguments (`None` if it is gone).
    /// A sleeping actor is woken to be saved; one that cannot be is an error, never
    /// "gone" (a snapshot would leave it out of the store).
    pub(crate) fn save_actor(
        &self,
        id: ActorId,
    ) -> Option<Result<(&'static ActorEntry, Vec<u8>), Error>> {
        let slot = match self.find(id) {
            Ok(slot) => slot?,
            Err(e) => return Some(Err(*e)),
        };
        let actor = slot.actor.borrow();
        Some(actor.save_any().map(|args| (actor.entry_any(), args)))
    }

    /// Places an actor rebuilt from its portrait.
    pub(crate) fn insert_restored(&self, id: ActorId, restored: Restored) {
        restored.slot.touched.set(self.journal.epoch());
        self.insert(id, restored.slot);
    }

    /// The registry entry of actor `id`, if it exists.
    pub(crate) fn entry_of(&self, id: ActorId) -> Option<&'static ActorEntry> {
        // Looked at, not woken.
        let awake = self.slots.borrow().get(&id.0).cloned();
        match awake {
            Some(s) => Some(s.actor.borrow().entry_any()),
            None => self.asleep_entry(id),
        }
    }

    /// The type of actor `id`, if it exists.
    pub(crate) fn type_of(&self, id: ActorId) -> Option<TypeId> {
        // Looked at, not woken.
        let awake = self.slots.borrow().get(&id.0).map(|s| s.type_id());
        awake.or_else(|| self.asleep_entry(id).map(ActorEntry::type_id))
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.get()
    }

    /// Takes the ids below `next_free` that a churn's save handed out for what it writes
    /// beside its actors (map entries' own portraits). Not taken back if the turn then
    /// rolls back, so no later spawn reuses an id the store may hold.
    pub(crate) fn reserved_to(&self, next_free: u64) {
        if next_free > self.next_id.get() {
            self.next_id.set(next_free);
            self.id_floor.set(next_free);
        }
    }

    pub(crate) fn set_next_id(&self, next: u64) {
        self.next_id.set(next);
    }

    /// Queues a message for this vat's first turns (used while starting up).
    pub(crate) fn queue_local(&self, env: Envelope) {
        self.local.borrow_mut().push_back(env);
    }

    /// Takes task `id` out of the table to poll it (`None` if it finished or failed).
    pub(crate) fn take_task(&self, id: u64) -> Option<Box<dyn AnyTask>> {
        self.tasks.borrow_mut().remove(&id)
    }

    /// Puts a task (back) in the table, to wait for its next step.
    pub(crate) fn put_task(&self, id: u64, task: Box<dyn AnyTask>) {
        self.tasks.borrow_mut().insert(id, task);
    }

    /// Queues `env` for `target`'s vat when this turn commits.
    pub(crate) fn send_on_commit(&self, target: &Arc<VatShared>, env: Envelope) {
        if target.id == self.shared.id {
            self.journal.push_effect(Effect::Local(env));
        } else {
            self.journal.push_send(target, env);
        }
    }

    pub(crate) fn self_ref<T: Actor>(&self) -> Option<Ref<T>> {
        let id = self.current_actor.get()?;
        let slot = self.slot(id)?;
        (slot.type_id() == TypeId::of::<T>())
            .then(|| Ref::with_hold(self.shared.clone(), id, slot.hold(&self.shared, id)))
    }
}
