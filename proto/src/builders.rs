//! Constructors for the messages that code outside the API most often
//! writes by hand: a service running one container image.

use crate::Shared;
use crate::v1::{Annotations, ContainerSpec, ServiceSpec, TaskSpec, task_spec};

impl ServiceSpec {
    /// A service named `name` whose tasks run `image` with everything else
    /// left to the defaults (replicated, one replica).
    pub fn container(name: impl Into<String>, image: impl Into<String>) -> ServiceSpec {
        ServiceSpec {
            annotations: Some(Annotations {
                name: name.into(),
                ..Default::default()
            }),
            task: Some(Shared::new(TaskSpec {
                runtime: Some(task_spec::Runtime::Container(ContainerSpec {
                    image: image.into(),
                    ..Default::default()
                })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }
}
