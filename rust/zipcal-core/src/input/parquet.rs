//! One text column of a Parquet file, read as Arrow string views.
//!
//! The values of a decoded Parquet page are stored back to back with their lengths
//! between them; a string view array can point into that page, so the text is
//! decompressed once and never copied. Decoding into offset-based strings instead
//! copies every value into a buffer that grows (and is reallocated) as the batch
//! fills. Row groups, projection and batch size are those of the caller; any error
//! (unsupported codec, invalid UTF-8, damaged page) is returned, not panicked on, so
//! that the caller can fall back to another reader.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, StringViewArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::ConvertedType;

use crate::error::{Error, Result};

/// An input error naming the file.
fn input_error(path: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{path}: {e}"))
}

/// An open Parquet file: its metadata, read once.
pub struct ParquetFile {
    path: String,
    file: File,
    meta: ArrowReaderMetadata,
}

impl ParquetFile {
    pub fn open(path: &Path) -> Result<ParquetFile> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| input_error(&name, e))?;
        let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| input_error(&name, e))?;
        Ok(ParquetFile {
            path: name,
            file,
            meta,
        })
    }

    /// The Arrow schema of the file's columns.
    pub fn schema(&self) -> SchemaRef {
        self.meta.schema().clone()
    }

    /// Read `column` (a top-level string column) in batches of `batch_rows` rows, from
    /// the given row groups (all when `None`) in their order.
    pub fn text(
        &self,
        column: &str,
        batch_rows: usize,
        row_groups: Option<Vec<usize>>,
    ) -> Result<ParquetText> {
        self.text_from(column, batch_rows, row_groups, 0)
    }

    /// [`ParquetFile::text`], with a first batch of `first_rows` rows when that is
    /// fewer than `batch_rows` (0: no smaller first batch). A small first batch is
    /// decoded from the first page alone, so the caller starts on it sooner; the
    /// rest are read by a second reader that skips those rows (decoding the page
    /// they share once more).
    pub fn text_from(
        &self,
        column: &str,
        batch_rows: usize,
        row_groups: Option<Vec<usize>>,
        first_rows: usize,
    ) -> Result<ParquetText> {
        let batch_rows = batch_rows.max(1);
        if first_rows == 0 || first_rows >= batch_rows {
            return Ok(ParquetText {
                path: self.path.clone(),
                batches: self.reader(column, batch_rows, row_groups, 0, None)?,
                rest: None,
            });
        }
        let batches = self.reader(column, first_rows, row_groups.clone(), 0, Some(first_rows))?;
        let rest = self.reader(column, batch_rows, row_groups, first_rows, None)?;
        Ok(ParquetText {
            path: self.path.clone(),
            batches,
            rest: Some(rest),
        })
    }

    /// A reader of `column` in batches of `batch_rows` rows, from `row_groups`
    /// (all when None), skipping the first `offset` of their rows and stopping
    /// after `limit`.
    fn reader(
        &self,
        column: &str,
        batch_rows: usize,
        row_groups: Option<Vec<usize>>,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<ParquetRecordBatchReader> {
        let fail = |e: &dyn std::fmt::Display| input_error(&self.path, e);
        let schema = self.meta.schema();
        let index = schema
            .index_of(column)
            .map_err(|_| fail(&format!("no column {column:?}")))?;
        match schema.field(index).data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {}
            other => return Err(fail(&format!("column {column:?} is {other}, not strings"))),
        }
        // The decoder checks UTF-8 only for columns annotated as UTF-8 text, and
        // [`TextBatch`] promises checked text: an Arrow string type over any other
        // byte array column (say, from an embedded Arrow schema) is not read here.
        let parquet = self.meta.parquet_schema();
        let unannotated = (0..parquet.num_columns()).any(|leaf| {
            parquet.get_column_root_idx(leaf) == index
                && parquet.column(leaf).converted_type() != ConvertedType::UTF8
        });
        if unannotated {
            return Err(fail(&format!(
                "column {column:?} is not annotated as UTF-8 in the Parquet schema"
            )));
        }
        // The same schema with the text column read as views.
        let fields: Vec<Arc<Field>> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i == index {
                    Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View))
                } else {
                    f.clone()
                }
            })
            .collect();
        let views = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let meta = ArrowReaderMetadata::try_new(
            self.meta.metadata().clone(),
            ArrowReaderOptions::new().with_schema(views),
        )
        .map_err(|e| fail(&e))?;
        let file = self.file.try_clone().map_err(|e| fail(&e))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta);
        let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
        let mut builder = builder
            .with_projection(mask)
            .with_batch_size(batch_rows.max(1))
            .with_offset(offset);
        if let Some(limit) = limit {
            builder = builder.with_limit(limit);
        }
        if let Some(groups) = row_groups {
            let n = builder.metadata().num_row_groups();
            if let Some(&bad) = groups.iter().find(|&&g| g >= n) {
                return Err(fail(&format!("no row group {bad} (the file has {n})")));
            }
            builder = builder.with_row_groups(groups);
        }
        builder.build().map_err(|e| fail(&e))
    }
}

/// One batch of a Parquet text column: a `Utf8View` array whose strings the
/// Parquet decoder checked as UTF-8 (made only by [`ParquetText`]), so that ingestion
/// need not check them again.
#[derive(Clone, Debug)]
pub struct TextBatch {
    array: ArrayRef,
}

impl TextBatch {
    /// The strings, as an Arrow `Utf8View` array.
    pub fn array(&self) -> &ArrayRef {
        &self.array
    }

    /// Each row's text (None for a null row), borrowed from the array.
    pub fn texts(&self) -> Vec<Option<&str>> {
        let views = self
            .array
            .as_any()
            .downcast_ref::<StringViewArray>()
            .expect("a text batch holds string views");
        views.iter().collect()
    }
}

/// Batches of one string column of a Parquet file, as `Utf8View` arrays.
pub struct ParquetText {
    path: String,
    batches: ParquetRecordBatchReader,
    /// The reader of the rows after a smaller first batch.
    rest: Option<ParquetRecordBatchReader>,
}

impl ParquetText {
    /// The next batch's strings, `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<TextBatch>> {
        loop {
            match self.batches.next() {
                None => match self.rest.take() {
                    Some(rest) => self.batches = rest,
                    None => return Ok(None),
                },
                Some(Ok(batch)) => {
                    return Ok(Some(TextBatch {
                        array: batch.column(0).clone(),
                    }))
                }
                Some(Err(e)) => return Err(input_error(&self.path, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    /// A Parquet file with an id column and a text column, `per_group` rows per row group.
    fn write(path: &Path, texts: &[Option<&str>], per_group: usize, large: bool) {
        let text: ArrayRef = if large {
            Arc::new(LargeStringArray::from(texts.to_vec()))
        } else {
            Arc::new(StringArray::from(texts.to_vec()))
        };
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..texts.len() as i64));
        let batch = RecordBatch::try_from_iter([("id", ids), ("text", text)]).expect("batch");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(per_group))
            .build();
        let mut w = ArrowWriter::try_new(
            File::create(path).expect("create"),
            batch.schema(),
            Some(props),
        )
        .expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }

    fn open(
        path: &Path,
        column: &str,
        batch_rows: usize,
        row_groups: Option<Vec<usize>>,
    ) -> Result<ParquetText> {
        ParquetFile::open(path)?.text(column, batch_rows, row_groups)
    }

    fn read_all(r: ParquetText) -> Vec<Option<String>> {
        lengths_and_rows(r).1
    }

    fn texts(n: usize) -> Vec<Option<String>> {
        (0..n)
            .map(|i| (i % 7 != 3).then(|| format!("document {i} {}", "long words ".repeat(i % 5))))
            .collect()
    }

    /// The length of each batch, and all rows.
    fn lengths_and_rows(mut r: ParquetText) -> (Vec<usize>, Vec<Option<String>>) {
        let (mut lengths, mut rows) = (Vec::new(), Vec::new());
        while let Some(batch) = r.next_batch().expect("batch") {
            let a = batch
                .array()
                .as_any()
                .downcast_ref::<StringViewArray>()
                .expect("views");
            lengths.push(arrow_array::Array::len(a));
            rows.extend(a.iter().map(|s| s.map(str::to_owned)));
        }
        (lengths, rows)
    }

    #[test]
    fn a_smaller_first_batch_then_the_same_rows_in_full_batches() {
        let dir = std::env::temp_dir().join(format!("zipcal-pq-first-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let want = texts(100);
        let refs: Vec<Option<&str>> = want.iter().map(|t| t.as_deref()).collect();
        let path = dir.join("t.parquet");
        write(&path, &refs, 30, false);
        let file = ParquetFile::open(&path).expect("open");
        // Row groups 3 and 1, in that order: rows 90..100 then 30..60.
        let mut some = want[90..100].to_vec();
        some.extend_from_slice(&want[30..60]);
        for (groups, rows) in [(None, &want), (Some(vec![3, 1]), &some)] {
            for (batch, first) in [
                (16, 5),
                (16, 1),
                (16, 35),
                (16, 0),
                (16, 16),
                (16, 200),
                (64, 40),
                (1000, 7),
            ] {
                let r = file
                    .text_from("text", batch, groups.clone(), first)
                    .expect("read");
                let (lengths, got) = lengths_and_rows(r);
                assert_eq!(
                    &got, rows,
                    "batch {batch}, first {first}, groups {groups:?}"
                );
                let n = rows.len();
                let head = if first == 0 || first >= batch {
                    batch
                } else {
                    first
                };
                let mut expected = vec![head.min(n)];
                let mut left = n - head.min(n);
                while left > 0 {
                    expected.push(left.min(batch));
                    left -= left.min(batch);
                }
                assert_eq!(
                    lengths, expected,
                    "batch {batch}, first {first}, groups {groups:?}"
                );
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reads_the_column_in_batches_and_row_groups() {
        let dir = std::env::temp_dir().join(format!("zipcal-pq-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let want = texts(100);
        let refs: Vec<Option<&str>> = want.iter().map(|t| t.as_deref()).collect();
        for large in [false, true] {
            let path = dir.join(format!("t{large}.parquet"));
            write(&path, &refs, 30, large);
            for rows in [1, 7, 64, 1000] {
                let r = open(&path, "text", rows, None).expect("open");
                assert_eq!(read_all(r), want, "batch {rows}");
            }
            // Row groups 3 and 1, in that order (rows 90..100 then 30..60).
            let r = open(&path, "text", 8, Some(vec![3, 1])).expect("open");
            let mut some = want[90..100].to_vec();
            some.extend_from_slice(&want[30..60]);
            assert_eq!(read_all(r), some);
            let err = |r: Result<ParquetText>| match r {
                Ok(_) => panic!("expected an error"),
                Err(e) => e.to_string(),
            };
            let e = err(open(&path, "body", 8, None));
            assert!(e.contains("no column \"body\"") && e.contains("t"), "{e}");
            let e = err(open(&path, "id", 8, None));
            assert!(e.contains("not strings"), "{e}");
            let e = err(open(&path, "text", 8, Some(vec![4])));
            assert!(e.contains("no row group 4"), "{e}");
        }
        let e = match open(&dir.join("missing.parquet"), "text", 8, None) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("missing.parquet"), "{e}");
        std::fs::write(dir.join("junk.parquet"), b"not parquet at all").expect("junk");
        assert!(open(&dir.join("junk.parquet"), "text", 8, None).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A byte-array column not annotated as UTF-8, which an Arrow schema stored in the
    /// file calls a string column: the decoder would not check its bytes, so the
    /// reader refuses it (the caller then reads the file another way) rather than
    /// give out a batch promised checked.
    #[test]
    fn a_string_schema_over_unannotated_bytes_is_refused() {
        use arrow_array::BinaryArray;
        use parquet::arrow::arrow_writer::ArrowWriterOptions;
        use parquet::arrow::encode_arrow_schema;
        use parquet::file::metadata::KeyValue;

        let dir = std::env::temp_dir().join(format!("zipcal-pq-bytes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("bytes.parquet");
        let bytes: ArrayRef = Arc::new(BinaryArray::from(vec![&b"fine"[..], &b"bad \xff"[..]]));
        let batch = RecordBatch::try_from_iter([("text", bytes)]).expect("batch");
        let options = ArrowWriterOptions::new().with_skip_arrow_metadata(true);
        let mut w = ArrowWriter::try_new_with_options(
            File::create(&path).expect("create"),
            batch.schema(),
            options,
        )
        .expect("writer");
        let strings = Schema::new(vec![Field::new("text", DataType::Utf8, true)]);
        w.append_key_value_metadata(KeyValue::new(
            "ARROW:schema".to_string(),
            encode_arrow_schema(&strings),
        ));
        w.write(&batch).expect("write");
        w.close().expect("close");

        let file = ParquetFile::open(&path).expect("open");
        assert_eq!(
            file.schema().field(0).data_type(),
            &DataType::Utf8,
            "the stored schema is used"
        );
        let e = match file.text("text", 8, None) {
            Ok(_) => panic!("expected the column to be refused"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("not annotated as UTF-8") && e.contains("bytes.parquet"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
