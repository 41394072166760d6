//! [`Shared`]: a message held behind an `Arc`, for parts that many objects
//! carry identically.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};

/// A message shared by reference: cloning it is a reference count, and
/// [`Shared::make_mut`] copies it only if someone else holds it too.
///
/// Every task of a service carries the service's task spec: 100,000 tasks
/// would otherwise hold 100,000 copies of the same few hundred bytes, and
/// every read-modify-write of a task would copy its spec again. On the wire
/// it is the plain message; nothing else can tell the difference.
#[derive(Clone, Default, PartialEq)]
pub struct Shared<T>(Arc<T>);

impl<T> Shared<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(value))
    }

    /// True if both hold the very same value, not merely equal ones.
    pub fn ptr_eq(a: &Shared<T>, b: &Shared<T>) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T: Clone> Shared<T> {
    /// The value, to change; copied first if it is shared.
    pub fn make_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Shared<T> {
        Shared::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Message + Clone + Default> Message for Shared<T> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.0.encode_raw(buf)
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        self.make_mut().merge_field(tag, wire_type, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }

    fn clear(&mut self) {
        *self = Shared::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ContainerSpec, Service, ServiceSpec, Task, TaskSpec, task_spec};

    fn spec() -> TaskSpec {
        TaskSpec {
            runtime: Some(task_spec::Runtime::Container(ContainerSpec {
                image: "busybox".into(),
                args: vec!["sleep".into(), "1".into()],
                ..Default::default()
            })),
            force_update: 3,
            ..Default::default()
        }
    }

    #[test]
    fn on_the_wire_a_shared_spec_is_the_plain_message() {
        let task = Task {
            spec: Some(Shared::new(spec())),
            ..Default::default()
        };
        let service = Service {
            spec: Some(ServiceSpec {
                task: Some(Shared::new(spec())),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Field 3 of Task and field 2 of ServiceSpec hold exactly the bytes
        // of the plain TaskSpec.
        let plain = spec().encode_to_vec();
        let task_bytes = task.encode_to_vec();
        assert_eq!(task_bytes[0], 3 << 3 | 2);
        assert_eq!(&task_bytes[2..], &plain[..]);
        assert_eq!(Task::decode(&task_bytes[..]).unwrap(), task);
        assert_eq!(Service::decode(&service.encode_to_vec()[..]).unwrap(), service);
    }

    #[test]
    fn clones_share_and_make_mut_copies_only_when_shared() {
        let a = Shared::new(spec());
        let mut b = a.clone();
        assert!(Shared::ptr_eq(&a, &b));
        b.make_mut().force_update = 4;
        assert!(!Shared::ptr_eq(&a, &b));
        assert_eq!(a.force_update, 3);
        assert_eq!(b.force_update, 4);
        let before = std::ptr::from_ref::<TaskSpec>(&b);
        b.make_mut().force_update = 5;
        assert_eq!(
            std::ptr::from_ref::<TaskSpec>(&b),
            before,
            "an unshared value is changed in place"
        );
    }
}
