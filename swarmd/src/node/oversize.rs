//! Requests over the size the Control API decodes, refused as gRPC means
//! it: `ResourceExhausted`, in the manager's words. tonic's decoder refuses
//! them before any handler runs, with `OutOfRange` and "Error, decoded
//! message length too large: ...".

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What tonic's refusal starts with.
const TONIC_REFUSAL: &str = "Error, decoded message length too large: ";

/// Wraps a gRPC server's routes to reword tonic's refusal of a request
/// over the size limit.
#[derive(Clone, Copy, Default)]
pub(crate) struct OversizeLayer;

impl<S> tower::Layer<S> for OversizeLayer {
    type Service = Oversize<S>;

    fn layer(&self, inner: S) -> Oversize<S> {
        Oversize { inner }
    }
}

/// See [`OversizeLayer`].
#[derive(Clone)]
pub(crate) struct Oversize<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for Oversize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            // The refusal comes before the body is read: a response of
            // headers only, its status among them.
            let reworded = tonic::Status::from_header_map(response.headers())
                .filter(|status| status.code() == tonic::Code::OutOfRange)
                .and_then(|status| reword(status.message()));
            if let Some(status) = reworded {
                // Valid header values: a message of our own, percent-encoded.
                let _ = status.add_header(response.headers_mut());
            }
            Ok(response)
        })
    }
}

/// The refusal tonic words as `refusal`, in ours; `None` for any other.
fn reword(refusal: &str) -> Option<tonic::Status> {
    let sizes = refusal.strip_prefix(TONIC_REFUSAL)?;
    // "found 9437205 bytes, the limit is: 8388608 bytes"
    let (found, limit) = sizes.strip_prefix("found ")?.split_once(" bytes, the limit is: ")?;
    let limit = limit.strip_suffix(" bytes")?;
    let (found, limit): (u64, u64) = (found.parse().ok()?, limit.parse().ok()?);
    Some(tonic::Status::resource_exhausted(format!(
        "the request is {found} bytes, over the {limit} bytes ({} MiB) this manager takes in one request",
        limit >> 20
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_refusals_of_size_are_reworded_and_others_left() {
        let reworded =
            reword("Error, decoded message length too large: found 9437205 bytes, the limit is: 8388608 bytes")
                .expect("reworded");
        assert_eq!(reworded.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            reworded.message(),
            "the request is 9437205 bytes, over the 8388608 bytes (8 MiB) this manager takes in one request"
        );
        assert!(reword("an index out of range").is_none());
        assert!(reword("Error, decoded message length too large: in other words").is_none());
    }
}
