//! Constructors for the messages that code outside the API most often
//! writes by hand: a service running one container image.

use crate::Shared;
use crate::v1::{Annotations, ContainerSpec, ReplicatedService, ServiceSpec, TaskSpec, service_spec, task_spec};

impl ServiceSpec {
    /// A service named `name` of one replica whose task runs `image`, with
    /// everything else left to the defaults. (The mode is set: an update's
    /// spec must give it.)
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
            mode: Some(service_spec::Mode::Replicated(ReplicatedService { replicas: 1 })),
            ..Default::default()
        }
    }
}
