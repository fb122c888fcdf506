//! HTTP plumbing: the listener, the request and response types handlers see, request
//! bodies, header-case preservation and CORS. Only this folder sees hyper's types.

pub mod body;
pub mod cors;
pub mod header_case;
pub mod listener;
pub mod request;
pub mod response;
pub mod tls;
