//! The image worker: a competing consumer of the `images` queue that turns each uploaded
//! image into a thumbnail and a watermarked web-size copy.

pub mod config;
pub mod consumer;
pub mod job;
pub mod pipeline;
pub mod watermark;

pub use config::Config;
pub use consumer::run;
