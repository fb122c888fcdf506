//! The image work of one job, pure and synchronous: decode (JPEG, PNG, WebP, GIF first
//! frame) and turn it upright by its EXIF orientation, resize with `fast_image_resize`,
//! watermark the web copy, encode JPEG with no metadata (so no GPS position or other EXIF
//! of the original). The same input always gives the same bytes, which makes redelivered
//! jobs harmless.

use crate::watermark;
use fast_image_resize::images::Image;
use fast_image_resize::{PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage};
use std::io::Cursor;

/// Longest side of the thumbnail.
pub const THUMBNAIL_PX: u32 = 256;
/// Longest side of the web-size copy.
pub const WEB_PX: u32 = 1024;
const JPEG_QUALITY: u8 = 85;
/// Refuse decompression bombs: a small file may declare an enormous canvas.
const MAX_SIDE: u32 = 20_000;
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("not a supported image (JPEG, PNG, WebP or GIF)")]
    UnknownFormat,
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("resize failed: {0}")]
    Resize(String),
    #[error("encode failed: {0}")]
    Encode(String),
}

impl PipelineError {
    /// Whether retrying can ever help: bad input stays bad.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            PipelineError::UnknownFormat | PipelineError::Decode(_)
        )
    }
}

#[derive(Debug, Clone)]
pub struct Rendition {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone)]
pub struct Renditions {
    pub format: ImageFormat,
    pub source_width: u32,
    pub source_height: u32,
    pub thumbnail: Rendition,
    pub web: Rendition,
}

/// Sniffs the format from the first bytes, as the app does before accepting an upload.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    match image::guess_format(bytes).ok()? {
        f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif) => {
            Some(f)
        }
        _ => None,
    }
}

pub fn decode(bytes: &[u8]) -> Result<(ImageFormat, DynamicImage), PipelineError> {
    let format = sniff(bytes).ok_or(PipelineError::UnknownFormat)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let err = |e: image::ImageError| PipelineError::Decode(e.to_string());
    let mut decoder = reader.into_decoder().map_err(err)?;
    // Phones store a portrait shot as landscape pixels plus an EXIF Orientation: apply it,
    // so outputs are upright (they are written with no EXIF at all). A damaged EXIF block
    // only loses the rotation, not the picture.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    // For GIF this is the first frame.
    let mut img = DynamicImage::from_decoder(decoder).map_err(err)?;
    img.apply_orientation(orientation);
    Ok((format, img))
}

/// Fits (w, h) inside a `max`-pixel square, keeping the aspect ratio, never enlarging.
pub fn fit(w: u32, h: u32, max: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max {
        return (w.max(1), h.max(1));
    }
    let scale = |v: u32| {
        let scaled = (u64::from(v) * u64::from(max) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(scaled).unwrap_or(max).max(1)
    };
    (scale(w), scale(h))
}

/// Drops alpha by compositing onto white (JPEG has no alpha channel).
fn flatten(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let mix = |c: u8| {
            let v = (u16::from(c) * a + 255 * (255 - a) + 127) / 255;
            u8::try_from(v).unwrap_or(u8::MAX)
        };
        Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    })
}

fn resize(src: &RgbImage, w: u32, h: u32) -> Result<RgbImage, PipelineError> {
    if src.dimensions() == (w, h) {
        return Ok(src.clone());
    }
    let err = |e: &dyn std::fmt::Display| PipelineError::Resize(e.to_string());
    let src_view = Image::from_vec_u8(
        src.width(),
        src.height(),
        src.as_raw().clone(),
        PixelType::U8x3,
    )
    .map_err(|e| err(&e))?;
    let mut dst = Image::new(w, h, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(
        fast_image_resize::FilterType::Lanczos3,
    ));
    Resizer::new()
        .resize(&src_view, &mut dst, &options)
        .map_err(|e| err(&e))?;
    RgbImage::from_raw(w, h, dst.into_vec())
        .ok_or_else(|| PipelineError::Resize("buffer size mismatch".into()))
}

fn encode(img: &RgbImage) -> Result<Rendition, PipelineError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(img)
        .map_err(|e| PipelineError::Encode(e.to_string()))?;
    Ok(Rendition {
        jpeg: out,
        width: img.width(),
        height: img.height(),
    })
}

/// Decodes `bytes` and makes the thumbnail and the watermarked web copy.
pub fn process(bytes: &[u8], watermark_text: &str) -> Result<Renditions, PipelineError> {
    let (format, img) = decode(bytes)?;
    let (sw, sh) = (img.width(), img.height());
    let rgb = flatten(img);
    let (tw, th) = fit(sw, sh, THUMBNAIL_PX);
    let (ww, wh) = fit(sw, sh, WEB_PX);
    let mut web = resize(&rgb, ww, wh)?;
    // Thumbnails come from the web copy when it is smaller than the source: same result to
    // the eye, a fraction of the work.
    let thumb = resize(if (ww, wh) != (sw, sh) { &web } else { &rgb }, tw, th)?;
    watermark::apply(&mut web, watermark_text);
    Ok(Renditions {
        format,
        source_width: sw,
        source_height: sh,
        thumbnail: encode(&thumb)?,
        web: encode(&web)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use image::{ImageEncoder, Rgba, RgbaImage};

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 90])
        })
    }

    fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn dims(jpeg: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).unwrap();
        (img.width(), img.height())
    }

    /// A JPEG of `img` with an EXIF block (APP1) holding `orientation` and a GPS position.
    fn jpeg_with_exif(img: &RgbImage, orientation: u16) -> Vec<u8> {
        let plain = encoded(&DynamicImage::ImageRgb8(img.clone()), ImageFormat::Jpeg);
        // TIFF, big-endian: IFD0 with Orientation and a pointer to a GPS IFD holding
        // GPSLatitudeRef "N" (enough for a reader to find a position).
        let mut tiff: Vec<u8> = b"MM\0\x2a\0\0\0\x08".to_vec();
        tiff.extend_from_slice(&2u16.to_be_bytes());
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        let gps_at = 8 + 2 + 2 * 12 + 4;
        tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]);
        tiff.extend_from_slice(&(gps_at as u32).to_be_bytes());
        tiff.extend_from_slice(&0u32.to_be_bytes());
        tiff.extend_from_slice(&1u16.to_be_bytes());
        tiff.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
        tiff.extend_from_slice(&0u32.to_be_bytes());
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    /// Upright: red top-left, green top-right, blue bottom-left, white bottom-right.
    fn quadrants(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| match (x < w / 2, y < h / 2) {
            (true, true) => Rgb([230, 20, 20]),
            (false, true) => Rgb([20, 230, 20]),
            (true, false) => Rgb([20, 20, 230]),
            (false, false) => Rgb([240, 240, 240]),
        })
    }

    fn near(a: Rgb<u8>, b: Rgb<u8>) -> bool {
        a.0.iter().zip(b.0).all(|(x, y)| x.abs_diff(y) < 60)
    }

    #[test]
    fn every_exif_orientation_comes_out_upright_with_no_exif() {
        use image::metadata::Orientation;
        // A portrait photo, 400 x 600 upright.
        let upright = quadrants(400, 600);
        for value in 1u16..=8 {
            let o = Orientation::from_exif(value as u8).unwrap();
            // What a camera stores so that applying `o` shows `upright`.
            let inverse = match o {
                Orientation::Rotate90 => Orientation::Rotate270,
                Orientation::Rotate270 => Orientation::Rotate90,
                other => other,
            };
            let mut stored = DynamicImage::ImageRgb8(upright.clone());
            stored.apply_orientation(inverse);
            let file = jpeg_with_exif(&stored.to_rgb8(), value);
            let r = process(&file, "").unwrap();
            assert_eq!(
                (r.source_width, r.source_height),
                (400, 600),
                "orientation {value}"
            );
            assert_eq!(
                (r.thumbnail.width, r.thumbnail.height),
                (171, 256),
                "orientation {value}"
            );
            assert_eq!(
                (r.web.width, r.web.height),
                (400, 600),
                "orientation {value}"
            );
            let thumb = image::load_from_memory(&r.thumbnail.jpeg)
                .unwrap()
                .to_rgb8();
            let (w, h) = thumb.dimensions();
            for (x, y, want) in [
                (w / 4, h / 4, upright.get_pixel(100, 150)),
                (3 * w / 4, h / 4, upright.get_pixel(300, 150)),
                (w / 4, 3 * h / 4, upright.get_pixel(100, 450)),
                (3 * w / 4, 3 * h / 4, upright.get_pixel(300, 450)),
            ] {
                assert!(
                    near(*thumb.get_pixel(x, y), *want),
                    "orientation {value} at ({x}, {y})"
                );
            }
            for out in [&r.thumbnail.jpeg, &r.web.jpeg] {
                assert!(
                    !out.windows(4).any(|w| w == b"Exif"),
                    "orientation {value}: an output carries EXIF"
                );
                assert!(
                    !out.windows(2).any(|w| w == [0xFF, 0xE1]),
                    "no APP1 segment"
                );
            }
        }
    }

    #[test]
    fn a_damaged_exif_block_keeps_the_picture() {
        let mut file = jpeg_with_exif(&quadrants(120, 80), 6);
        // Cut the TIFF header: the EXIF block is unreadable, the image still decodes.
        file[12..16].copy_from_slice(b"XXXX");
        let r = process(&file, "").unwrap();
        assert_eq!((r.source_width, r.source_height), (120, 80));
    }

    #[test]
    fn fit_keeps_aspect_and_never_enlarges() {
        assert_eq!(fit(2000, 1500, 256), (256, 192));
        assert_eq!(fit(1500, 2000, 1024), (768, 1024));
        assert_eq!(fit(100, 50, 256), (100, 50));
        assert_eq!(fit(10_000, 1, 256), (256, 1));
        assert_eq!(fit(0, 0, 256), (1, 1));
    }

    #[test]
    fn every_input_format_gives_both_sizes() {
        let src = DynamicImage::ImageRgb8(gradient(2000, 1500));
        for format in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::WebP,
            ImageFormat::Gif,
        ] {
            let input = if format == ImageFormat::Gif {
                // GIF is palette-based; encode an RGBA frame.
                encoded(&DynamicImage::ImageRgba8(src.to_rgba8()), format)
            } else {
                encoded(&src, format)
            };
            let r = process(&input, "PREVIEW").unwrap();
            assert_eq!(r.format, format);
            assert_eq!((r.source_width, r.source_height), (2000, 1500));
            assert_eq!(
                (r.thumbnail.width, r.thumbnail.height),
                (256, 192),
                "{format:?}"
            );
            assert_eq!(dims(&r.thumbnail.jpeg), (256, 192));
            assert_eq!((r.web.width, r.web.height), (1024, 768));
            assert_eq!(dims(&r.web.jpeg), (1024, 768));
        }
    }

    #[test]
    fn small_images_are_not_enlarged() {
        let input = encoded(
            &DynamicImage::ImageRgb8(gradient(120, 80)),
            ImageFormat::Png,
        );
        let r = process(&input, "PREVIEW").unwrap();
        assert_eq!((r.thumbnail.width, r.thumbnail.height), (120, 80));
        assert_eq!((r.web.width, r.web.height), (120, 80));
    }

    #[test]
    fn web_copy_carries_the_watermark_and_the_thumbnail_does_not() {
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(2048, 1536, Rgb([40, 40, 40])));
        let input = encoded(&flat, ImageFormat::Png);
        let r = process(&input, "PREVIEW").unwrap();
        let web = image::load_from_memory(&r.web.jpeg).unwrap().into_rgb8();
        let (x, y, w, h) = watermark::placement(1024, 768, "PREVIEW").unwrap();
        let bright_in_mark = (y..y + h)
            .flat_map(|py| (x..x + w).map(move |px| (px, py)))
            .filter(|&(px, py)| web.get_pixel(px, py).0[0] > 150)
            .count();
        assert!(bright_in_mark > 200, "watermark missing: {bright_in_mark}");
        // Away from the mark the picture is untouched (JPEG noise aside).
        assert!(web.get_pixel(10, 10).0[0] < 60);
        let thumb = image::load_from_memory(&r.thumbnail.jpeg)
            .unwrap()
            .into_rgb8();
        assert!(thumb.pixels().all(|p| p.0[0] < 70), "thumbnail is unmarked");
    }

    #[test]
    fn transparent_pixels_become_white() {
        let img = RgbaImage::from_pixel(300, 300, Rgba([0, 0, 0, 0]));
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 300, 300, image::ExtendedColorType::Rgba8)
            .unwrap();
        let r = process(&png, "X").unwrap();
        let thumb = image::load_from_memory(&r.thumbnail.jpeg)
            .unwrap()
            .into_rgb8();
        assert!(thumb.get_pixel(5, 5).0.iter().all(|&c| c > 245));
    }

    #[test]
    fn same_input_same_bytes() {
        let input = encoded(
            &DynamicImage::ImageRgb8(gradient(900, 700)),
            ImageFormat::Jpeg,
        );
        let a = process(&input, "PREVIEW").unwrap();
        let b = process(&input, "PREVIEW").unwrap();
        assert_eq!(a.thumbnail.jpeg, b.thumbnail.jpeg);
        assert_eq!(a.web.jpeg, b.web.jpeg);
    }

    #[test]
    fn corrupt_and_foreign_input_is_rejected_permanently() {
        let mut truncated = encoded(
            &DynamicImage::ImageRgb8(gradient(400, 300)),
            ImageFormat::Png,
        );
        truncated.truncate(200);
        let cases: [(&[u8], &str); 4] = [
            (b"", "UnknownFormat"),
            (b"hello, I am text", "UnknownFormat"),
            (&truncated, "Decode"),
            (b"\xFF\xD8\xFF\xE0garbage-after-a-jpeg-magic", "Decode"),
        ];
        for (input, want) in cases {
            let e = process(input, "PREVIEW").unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{e:?}");
            assert!(e.is_permanent());
        }
        // A BMP is an image, but not one we accept.
        assert_eq!(
            image::guess_format(b"BM\0\0\0\0").unwrap(),
            ImageFormat::Bmp
        );
        assert!(matches!(
            process(b"BM\0\0\0\0", "X"),
            Err(PipelineError::UnknownFormat)
        ));
    }

    #[test]
    fn decompression_bombs_are_refused() {
        // A valid PNG header declaring a 30000×30000 canvas.
        let img = DynamicImage::ImageLuma8(image::GrayImage::new(1, 1));
        let mut png = encoded(&img, ImageFormat::Png);
        png[16..20].copy_from_slice(&30_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&30_000u32.to_be_bytes());
        // Re-sign the IHDR chunk so only the size is wrong.
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = process(&png, "X").unwrap_err();
        assert!(
            e.to_string().contains("limit") || e.to_string().contains("Limit"),
            "{e}"
        );
        assert!(matches!(process(&png, "X"), Err(PipelineError::Decode(_))));
    }
}
