//! Shared state: values registered once on the [`ServerBuilder`](super::ServerBuilder) by type, reachable
//! from every handler through [`RequestContext::state`](super::RequestContext::state) — no clones captured
//! by each closure.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// The server's shared values, one per type.
#[derive(Default)]
pub(crate) struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl StateMap {
    /// Registers `value`, replacing the one of the same type.
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was registered.
    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>()).and_then(|value| value.downcast_ref())
    }
}

impl std::fmt::Debug for StateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMap").field("values", &self.values.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::StateMap;

    #[test]
    fn one_value_per_type_the_last_one_wins() {
        let mut states = StateMap::default();
        assert!(states.get::<u32>().is_none());
        states.insert(1u32);
        states.insert(2u32);
        states.insert("text");
        assert_eq!(states.get::<u32>(), Some(&2));
        assert_eq!(states.get::<&str>(), Some(&"text"));
    }
}
