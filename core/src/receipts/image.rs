//! The receipt image the payer keeps: a QR code of the signed receipt and, in plain text,
//! its number, amount, local date and time, and the masked deposit account.

use std::io::Cursor;

use chrono_tz::Tz;
use image::{GrayImage, ImageFormat, Luma};
use qrcode::{Color, EcLevel, QrCode};

use super::{ReceiptError, SignedReceipt, encode_receipt_qr};
use crate::model::{PaymentMethod, ReceiptSerial};

/// Pixels per QR module: large enough for any phone camera to read from paper or screen.
const MODULE_PX: u32 = 4;
/// The blank border a QR code needs, in modules.
const QUIET_MODULES: u32 = 4;
/// Text is the 8×8 font scaled by this.
const TEXT_SCALE: u32 = 2;
const LINE_PX: u32 = 8 * TEXT_SCALE + 8;
const MARGIN_PX: u32 = 16;

/// Renders the payer's receipt image (PNG); times are shown in `zone`, the policy's zone.
pub fn render_receipt_png(receipt: &SignedReceipt, zone: Tz) -> Result<Vec<u8>, ReceiptError> {
    let content = receipt.content()?;
    let text = encode_receipt_qr(receipt)?;
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| ReceiptError::Image(e.to_string()))?;
    let local = chrono::DateTime::from_timestamp_millis(content.at_ms)
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "unknown".into());
    let method = match content.method {
        PaymentMethod::Cash => "cash",
        PaymentMethod::Cheque => "cheque",
    };
    let lines = [
        "TANDEM COLLECTION RECEIPT".to_owned(),
        format!("No. {}", ReceiptSerial(content.serial)),
        format!("Amount: {} {}", content.amount, content.currency),
        format!("Method: {method}   Fee: {}", content.fee),
        format!("Date: {local} ({zone})"),
        format!(
            "Deposit account: {}",
            mask_account(&content.designated_account)
        ),
        "Signed by both agents: scan to verify".to_owned(),
    ];

    let modules = u32::try_from(code.width()).map_err(|e| ReceiptError::Image(e.to_string()))?;
    let qr_px = (modules + 2 * QUIET_MODULES) * MODULE_PX;
    let text_w = lines
        .iter()
        .map(|l| l.chars().count() as u32 * 8 * TEXT_SCALE)
        .max()
        .unwrap_or(0)
        + 2 * MARGIN_PX;
    let width = qr_px.max(text_w);
    let height = qr_px + lines.len() as u32 * LINE_PX + MARGIN_PX;
    let mut img = GrayImage::from_pixel(width, height, Luma([255]));

    let qr_left = (width - qr_px) / 2 + QUIET_MODULES * MODULE_PX;
    let top = QUIET_MODULES * MODULE_PX;
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let i = i as u32;
            let (mx, my) = (i % modules, i / modules);
            fill(
                &mut img,
                qr_left + mx * MODULE_PX,
                top + my * MODULE_PX,
                MODULE_PX,
            );
        }
    }
    for (n, line) in lines.iter().enumerate() {
        draw_text(&mut img, MARGIN_PX, qr_px + n as u32 * LINE_PX, line);
    }

    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| ReceiptError::Image(e.to_string()))?;
    Ok(out.into_inner())
}

/// Only the last four characters of the account show: enough to recognise it.
fn mask_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().filter(|c| !c.is_whitespace()).collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("**** {tail}")
}

fn fill(img: &mut GrayImage, x: u32, y: u32, size: u32) {
    for dy in 0..size {
        for dx in 0..size {
            if x + dx < img.width() && y + dy < img.height() {
                img.put_pixel(x + dx, y + dy, Luma([0]));
            }
        }
    }
}

/// The 8×8 glyph of `c`: ASCII and Latin-1 (for `¥`); anything else shows as `?`.
fn glyph(c: char) -> [u8; 8] {
    use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};
    let code = c as usize;
    match code {
        0..=127 => BASIC_LEGACY[code],
        0xA0..=0xFF => LATIN_LEGACY[code - 0xA0],
        _ => BASIC_LEGACY[usize::from(b'?')],
    }
}

fn draw_text(img: &mut GrayImage, x: u32, y: u32, text: &str) {
    for (n, c) in text.chars().enumerate() {
        let left = x + n as u32 * 8 * TEXT_SCALE;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8u32 {
                // Bit 0 is the leftmost pixel in this font.
                if bits & (1 << col) != 0 {
                    fill(
                        img,
                        left + col * TEXT_SCALE,
                        y + row as u32 * TEXT_SCALE,
                        TEXT_SCALE,
                    );
                }
            }
        }
    }
}
