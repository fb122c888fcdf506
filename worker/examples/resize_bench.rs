//! Measures what the worker's resize costs with `fast_image_resize` against `image`'s own
//! `resize`, same filter (Lanczos3), same input, and the whole pipeline per image.
//!
//! cargo run --release -p worker --example resize_bench
#![allow(clippy::unwrap_used)]

use fast_image_resize::images::Image;
use fast_image_resize::{PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{imageops, DynamicImage, ImageFormat, Rgb, RgbImage};
use std::io::Cursor;
use std::time::Instant;

fn main() {
    let (w, h) = (4000u32, 3000u32);
    let src = RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 251) as u8, (y % 241) as u8, ((x ^ y) % 256) as u8])
    });
    let rounds = 5;
    for (tw, th) in [(1024u32, 768u32), (256, 192)] {
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(imageops::resize(
                &src,
                tw,
                th,
                imageops::FilterType::Lanczos3,
            ));
        }
        let slow = t.elapsed().as_secs_f64() / f64::from(rounds);
        let t = Instant::now();
        let mut resizer = Resizer::new();
        for _ in 0..rounds {
            let view = Image::from_vec_u8(w, h, src.as_raw().clone(), PixelType::U8x3).unwrap();
            let mut dst = Image::new(tw, th, PixelType::U8x3);
            resizer
                .resize(
                    &view,
                    &mut dst,
                    &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(
                        fast_image_resize::FilterType::Lanczos3,
                    )),
                )
                .unwrap();
            std::hint::black_box(dst);
        }
        let fast = t.elapsed().as_secs_f64() / f64::from(rounds);
        println!(
            "{w}x{h} -> {tw}x{th} Lanczos3: image {:.1} ms, fast_image_resize {:.1} ms ({:.1}x)",
            slow * 1e3,
            fast * 1e3,
            slow / fast
        );
    }
    let mut jpeg = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(src)
        .write_to(&mut jpeg, ImageFormat::Jpeg)
        .unwrap();
    let jpeg = jpeg.into_inner();
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(worker::pipeline::process(&jpeg, "PREVIEW").unwrap());
    }
    println!(
        "whole pipeline on a {w}x{h} JPEG ({} KiB): {:.1} ms (decode, 2 resizes, watermark, 2 encodes)",
        jpeg.len() / 1024,
        t.elapsed().as_secs_f64() * 1e3 / f64::from(rounds)
    );
}
