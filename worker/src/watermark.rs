//! A text watermark drawn with the public-domain 8×8 bitmap font (`font8x8`), so no font file
//! ships with the worker. Glyphs are scaled to the image and blended: a dark shadow, then a
//! light face, both translucent, so the mark reads on light and dark photos alike.

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

/// Glyph cells are 8 font pixels square.
const CELL: u32 = 8;

/// The font scale for an image: about 1/40 of the width per glyph row pixel, at least 1.
pub fn scale_for(width: u32) -> u32 {
    (width / 320).clamp(1, 8)
}

/// The rectangle the text occupies (x, y, width, height), anchored bottom-right with a margin.
pub fn placement(image_w: u32, image_h: u32, text: &str) -> Option<(u32, u32, u32, u32)> {
    let s = scale_for(image_w);
    let glyphs = u32::try_from(text.chars().count()).ok()?;
    let (w, h) = (glyphs * CELL * s, CELL * s);
    let margin = 2 * s;
    if w + 2 * margin > image_w || h + 2 * margin > image_h || glyphs == 0 {
        return None;
    }
    Some((image_w - w - margin, image_h - h - margin, w, h))
}

fn blend(p: &mut Rgb<u8>, color: [u8; 3], alpha: u16) {
    for (c, t) in p.0.iter_mut().zip(color) {
        let v = (u16::from(*c) * (256 - alpha) + u16::from(t) * alpha) >> 8;
        *c = u8::try_from(v).unwrap_or(u8::MAX);
    }
}

/// Draws `text` in the bottom-right corner; returns false (image untouched) when the text
/// does not fit.
pub fn apply(img: &mut RgbImage, text: &str) -> bool {
    let (iw, ih) = img.dimensions();
    let Some((x0, y0, _, _)) = placement(iw, ih, text) else {
        return false;
    };
    let s = scale_for(iw);
    // Shadow first (offset by one font pixel), then the face on top.
    for (offset, color, alpha) in [(s, [0, 0, 0], 110u16), (0, [255, 255, 255], 200u16)] {
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::LATIN_FONTS.get(ch))
                .unwrap_or([0; 8]);
            let gx = x0 + u32::try_from(i).unwrap_or(0) * CELL * s;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..CELL {
                    if bits & (1 << col) == 0 {
                        continue;
                    }
                    let row = u32::try_from(row).unwrap_or(0);
                    for dy in 0..s {
                        for dx in 0..s {
                            let x = gx + col * s + dx + offset;
                            let y = y0 + row * s + dy + offset;
                            if x < iw && y < ih {
                                blend(img.get_pixel_mut(x, y), color, alpha);
                            }
                        }
                    }
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn draws_light_pixels_only_inside_its_box() {
        let mut img = RgbImage::from_pixel(1024, 768, Rgb([60, 60, 60]));
        assert!(apply(&mut img, "PREVIEW"));
        let (x, y, w, h) = placement(1024, 768, "PREVIEW").unwrap();
        let mut light = 0;
        for (px, py, p) in img.enumerate_pixels() {
            let inside = px >= x && px < x + w + 4 && py >= y && py < y + h + 4;
            if p.0 != [60, 60, 60] {
                assert!(inside, "changed pixel at {px},{py} outside the mark");
            }
            if p.0[0] > 200 {
                light += 1;
            }
        }
        assert!(light > 500, "only {light} light pixels");
    }

    #[test]
    fn too_small_images_are_left_alone() {
        let mut img = RgbImage::from_pixel(20, 10, Rgb([1, 2, 3]));
        assert!(!apply(&mut img, "PREVIEW"));
        assert!(img.pixels().all(|p| p.0 == [1, 2, 3]));
    }
}
