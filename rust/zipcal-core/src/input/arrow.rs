//! Arrow string arrays as text: validated as UTF-8 (Arrow data imported through the
//! C interface is not validated), borrowed zero-copy where valid.

use std::borrow::Cow;

use arrow_array::{
    Array, GenericStringArray, LargeStringArray, OffsetSizeTrait, StringArray, StringViewArray,
};
use arrow_schema::DataType;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Where a batch comes from, for error messages.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// File or object name.
    pub source: String,
    /// Row number (inside `source`) of the batch's first element.
    pub first_row: u64,
    /// Name of the text column.
    pub column: String,
}

/// Strings of an Arrow array, validated as UTF-8 (Arrow data imported through the C
/// interface is not validated). Valid strings are borrowed, zero-copy; invalid ones
/// are an error naming source, row and column, or, with `replace`, replaced lossily
/// and counted (second value).
pub fn arrow_strings<'a>(
    array: &'a dyn Array,
    origin: &Origin,
    replace: bool,
) -> Result<(Vec<Option<Cow<'a, str>>>, u64)> {
    fn check<'a>(
        s: Option<(&'a [u8], &'a str)>,
        i: usize,
        origin: &Origin,
        replace: bool,
    ) -> Result<Option<Cow<'a, str>>> {
        let Some((bytes, unchecked)) = s else {
            return Ok(None);
        };
        // SIMD validation (runtime CPU detection); the standard library's, slower,
        // only to locate the error of an invalid string.
        match simdutf8::basic::from_utf8(bytes) {
            // The bytes are valid UTF-8, so the &str view of the same bytes is sound.
            Ok(_) => Ok(Some(Cow::Borrowed(unchecked))),
            Err(_) if replace => Ok(Some(Cow::Owned(String::from_utf8_lossy(bytes).into_owned()))),
            Err(_) => Err(Error::InvalidInput(format!(
                "{}: row {}, column {:?}: invalid UTF-8 at byte {} (use encoding_errors='replace' to replace and count such rows)",
                origin.source,
                origin.first_row + i as u64,
                origin.column,
                std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to())
            ))),
        }
    }
    fn run<'a>(
        len: usize,
        get: impl Fn(usize) -> Option<(&'a [u8], &'a str)> + Sync,
        origin: &Origin,
        replace: bool,
    ) -> Result<(Vec<Option<Cow<'a, str>>>, u64)> {
        let parallel: Result<Vec<Option<Cow<'a, str>>>> = crate::threads::install(|| {
            (0..len)
                .into_par_iter()
                .map(|i| check(get(i), i, origin, replace))
                .collect::<Result<_>>()
        });
        // A parallel collect stops at whichever invalid row a thread met first: the
        // error names the first invalid row of the batch, found again in order.
        let out = match parallel {
            Ok(out) => out,
            Err(_) => (0..len)
                .map(|i| check(get(i), i, origin, replace))
                .collect::<Result<_>>()?,
        };
        let invalid = out
            .iter()
            .filter(|s| matches!(s, Some(Cow::Owned(_))))
            .count() as u64;
        Ok((out, invalid))
    }
    fn offset_strings<'a, O: OffsetSizeTrait>(
        a: &'a GenericStringArray<O>,
        origin: &Origin,
        replace: bool,
    ) -> Result<(Vec<Option<Cow<'a, str>>>, u64)> {
        let (offsets, data) = (a.value_offsets(), a.value_data());
        run(
            a.len(),
            |i| {
                (!a.is_null(i)).then(|| {
                    let (lo, hi) = (offsets[i].as_usize(), offsets[i + 1].as_usize());
                    (&data[lo..hi], a.value(i))
                })
            },
            origin,
            replace,
        )
    }
    let any = array.as_any();
    match array.data_type() {
        DataType::Utf8 => offset_strings(
            any.downcast_ref::<StringArray>().expect("Utf8"),
            origin,
            replace,
        ),
        DataType::LargeUtf8 => offset_strings(
            any.downcast_ref::<LargeStringArray>().expect("LargeUtf8"),
            origin,
            replace,
        ),
        DataType::Utf8View => {
            let a = any.downcast_ref::<StringViewArray>().expect("Utf8View");
            let views = a.views();
            let buffers = a.data_buffers();
            run(
                a.len(),
                |i| {
                    (!a.is_null(i)).then(|| {
                        let view = &views[i];
                        let len = *view as u32 as usize;
                        let bytes: &[u8] = if len <= 12 {
                            // Short strings live inline in the view, after the length.
                            // SAFETY: `view` is a u128 inside the views buffer; bytes 4..4+len of it are the
                            // inline string (Arrow view layout), and the reference lives as long as `a`.
                            unsafe {
                                std::slice::from_raw_parts(
                                    (view as *const u128 as *const u8).add(4),
                                    len,
                                )
                            }
                        } else {
                            let buffer = (*view >> 64) as u32 as usize;
                            let offset = (*view >> 96) as u32 as usize;
                            &buffers[buffer][offset..offset + len]
                        };
                        (bytes, a.value(i))
                    })
                },
                origin,
                replace,
            )
        }
        other => Err(Error::InvalidInput(format!(
            "{}: column {:?} has Arrow type {other}, expected strings",
            origin.source, origin.column
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};

    #[test]
    fn arrow_strings_are_validated_with_the_row_and_byte_of_an_error() {
        let origin = Origin {
            source: "in.parquet".into(),
            first_row: 5,
            column: "text".into(),
        };
        // Row 2 holds invalid UTF-8 from its fourth byte (a lone continuation byte);
        // row 1 is null; row 3 is long enough to live outside a string view.
        let rows: [Option<&[u8]>; 4] = [
            Some("naïve".as_bytes()),
            None,
            Some(b"abc\x80def"),
            Some("a longer text, past twelve bytes: ü".as_bytes()),
        ];
        let mut data = Vec::new();
        let mut offsets = vec![0i32];
        for r in rows {
            data.extend_from_slice(r.unwrap_or(b""));
            offsets.push(data.len() as i32);
        }
        let nulls = Some(vec![true, false, true, true].into());
        let offsets64 = OffsetBuffer::new(ScalarBuffer::from(
            offsets.iter().map(|&o| o as i64).collect::<Vec<_>>(),
        ));
        let offsets32 = OffsetBuffer::new(ScalarBuffer::from(offsets));
        // SAFETY: the buffers are well-formed arrays apart from row 2's UTF-8, which
        // is exactly what `arrow_strings` must catch.
        let (utf8, large) = unsafe {
            (
                StringArray::new_unchecked(offsets32, Buffer::from(data.clone()), nulls.clone()),
                LargeStringArray::new_unchecked(offsets64, Buffer::from(data), nulls),
            )
        };
        let view = StringViewArray::from(&utf8);
        let arrays: [&dyn Array; 3] = [&utf8, &large, &view];
        for a in arrays {
            let e = arrow_strings(a, &origin, false).unwrap_err().to_string();
            assert!(
                e.contains("in.parquet: row 7, column \"text\": invalid UTF-8 at byte 3"),
                "{:?}: {e}",
                a.data_type()
            );
            let (texts, invalid) = arrow_strings(a, &origin, true).unwrap();
            assert_eq!(invalid, 1);
            let got: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
            assert_eq!(
                got,
                [
                    Some("naïve"),
                    None,
                    Some("abc\u{fffd}def"),
                    Some("a longer text, past twelve bytes: ü")
                ]
            );
        }
    }

    #[test]
    fn an_invalid_batch_names_its_first_invalid_row_whatever_the_threads() {
        // Invalid rows far apart, so that parallel validation meets them in any order.
        let (n, bad) = (60_000usize, [17usize, 31_000, 59_999]);
        let mut data = Vec::new();
        let mut offsets = vec![0i32];
        for i in 0..n {
            if bad.contains(&i) {
                data.extend_from_slice(b"ab\xffc");
            } else {
                data.extend_from_slice(format!("row {i}").as_bytes());
            }
            offsets.push(data.len() as i32);
        }
        // SAFETY: well-formed offsets and data; only the UTF-8 of `bad` rows is invalid,
        // which is what `arrow_strings` must catch.
        let a = unsafe {
            StringArray::new_unchecked(
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                Buffer::from(data),
                None,
            )
        };
        let origin = Origin {
            source: "big.parquet".into(),
            first_row: 100,
            column: "text".into(),
        };
        for _ in 0..20 {
            let e = arrow_strings(&a, &origin, false).unwrap_err().to_string();
            assert!(e.contains("big.parquet: row 117, column"), "{e}");
        }
    }
}
