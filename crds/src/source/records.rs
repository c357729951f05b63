//! Reading `status/services.yaml` as a list of records, each known by a key of
//! its text, so that a reload parses only the records that changed: the
//! controller rewrites the whole file (5 MB at 10,000 Services) for one new
//! Service.

use std::hash::BuildHasher;
use std::io::{ErrorKind, Read};

use foldhash::SharedSeed;
use foldhash::quality::SeedableRandomState;

use super::status::{ServiceStatusRecord, ServicesStatusFile};

/// What identifies the text of one record: its length and a 64-bit foldhash
/// (seeded at random per process). foldhash, not SipHash: 6 MB of records per
/// reload took SipHash 6-12 ms, and the text is the controller's own output, not
/// an adversary's. 64 bits, not 128: a changed record is taken for its old text
/// only if its key equals that of one of the few entries looked at (see
/// [`Matcher`]), about 2^-64 per change; the second hash was a quarter of a
/// reload. Only this is kept between loads, not the parsed records: those were a
/// third of the speaker's heap at 10,000 Services, and the Services they were put
/// on hold the same facts.
pub(crate) type RecordKey = (usize, u64);

/// How much of the file is read at a time. Read, split and hashed while it is in
/// the cache: reading the whole 5 MB first, then splitting it, then hashing it,
/// went to memory three times and took 4-7 ms of a reload instead of 2.
pub(crate) const BLOCK: usize = 128 * 1024;

const HEAD: &[u8] = b"services:\n";

/// How much record text is parsed at a time. At start-up every record is new:
/// 10,000 of them gathered into one 9 MB text and parsed into 14 MB of records
/// at once were the speaker's heap peak, and the holes they left behind among
/// what it keeps were most of its resident memory afterwards.
const BATCH: usize = 64 * 1024;

/// One record, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// Not parsed: the caller knows this text, and its result is at this index of
    /// the caller's list.
    Known(usize),
    /// Parsed: the next of [`Records::parsed`]; with its key when the file is laid
    /// out as FerroLB writes it.
    Fresh(Option<RecordKey>),
}

/// The records of a file: the order, and what the caller made of each one
/// parsed.
#[derive(Debug)]
pub(crate) struct Records<R> {
    pub order: Vec<Scanned>,
    pub parsed: Vec<R>,
}

impl<R> Default for Records<R> {
    fn default() -> Self {
        Records {
            order: Vec::new(),
            parsed: Vec::new(),
        }
    }
}

impl<R> Records<R> {
    /// Every record parsed, none keyed (a file parsed whole).
    pub fn unkeyed(
        records: Vec<ServiceStatusRecord>,
        make: impl FnMut(ServiceStatusRecord) -> R,
    ) -> Self {
        Records {
            order: vec![Scanned::Fresh(None); records.len()],
            parsed: records.into_iter().map(make).collect(),
        }
    }
}

/// Parses the gathered record text (a `services:` document) and hands each
/// record to `make`; false when it does not parse into `want` records.
fn flush<R>(
    fresh: &mut String,
    want: &mut usize,
    out: &mut Vec<R>,
    make: &mut impl FnMut(ServiceStatusRecord) -> R,
) -> bool {
    if *want == 0 {
        return true;
    }
    let Ok(file) = serde_saphyr::from_str_with_options::<ServicesStatusFile>(
        fresh,
        super::file::status_options(),
    ) else {
        return false;
    };
    if file.services.len() != *want {
        return false;
    }
    out.extend(file.services.into_iter().map(make));
    fresh.clear();
    *want = 0;
    true
}

/// Reads the records of `r` `block` bytes at a time, keying each as its end
/// arrives and parsing only those `known` has no result for, a batch at a time,
/// each handed to `make` as soon as it is parsed (so that only a batch of
/// records is ever held). `Ok(None)` when the file is not laid out as FerroLB
/// writes it: `services:`, then one `- ` item per record at column 0, each line
/// after an item's first indented, no anchors or aliases (then the caller parses
/// it whole, which also gives the right error location).
pub(crate) fn scan_records<R>(
    mut r: impl Read,
    block: usize,
    mut known: impl FnMut(&RecordKey) -> Option<usize>,
    mut make: impl FnMut(ServiceStatusRecord) -> R,
) -> std::io::Result<Option<Records<R>>> {
    let hasher = SeedableRandomState::with_seed(0, record_seed());
    let mut buf = vec![0u8; block.max(HEAD.len() + 2)];
    let mut len = 0;
    let mut eof = false;
    while len < HEAD.len() + 2 && !eof {
        eof = !fill(&mut r, &mut buf, &mut len)?;
    }
    if !buf[..len].starts_with(HEAD) {
        return Ok(None);
    }
    let mut out = Records::default();
    if len == HEAD.len() && eof {
        return Ok(Some(out));
    }
    if !buf[HEAD.len()..len].starts_with(b"- ") {
        return Ok(None);
    }
    // The records to parse next, as one document, and how many there are.
    let mut fresh = String::new();
    let mut want = 0;
    let mut emit = |chunk: &[u8]| -> bool {
        let key = (chunk.len(), hasher.hash_one(chunk));
        if let Some(j) = known(&key) {
            out.order.push(Scanned::Known(j));
            return true;
        }
        // Only the records parsed now are checked for the layout: a known text
        // was checked when it was parsed.
        let Some(text) = record_text(chunk) else {
            return false;
        };
        if fresh.is_empty() {
            fresh.push_str("services:\n");
        }
        fresh.push_str(text);
        if !text.ends_with('\n') {
            fresh.push('\n');
        }
        out.order.push(Scanned::Fresh(Some(key)));
        want += 1;
        fresh.len() < BATCH || flush(&mut fresh, &mut want, &mut out.parsed, &mut make)
    };
    let mut start = HEAD.len();
    // Where the search for the next record start resumes: a start is `\n- `, and
    // a block may end inside one.
    let mut searched = start;
    loop {
        // A SIMD search for record starts; a walk over every line (200,000 of
        // them at 10,000 Services) was a quarter of a status-only reload.
        for at in memchr::memmem::find_iter(&buf[searched..len], b"\n- ") {
            let at = searched + at;
            if !emit(&buf[start..=at]) {
                return Ok(None);
            }
            start = at + 1;
        }
        if eof {
            // The last record, with its line ends as written: with `|+` a
            // trailing newline is content.
            if !emit(&buf[start..len]) {
                return Ok(None);
            }
            if !flush(&mut fresh, &mut want, &mut out.parsed, &mut make) {
                return Ok(None);
            }
            break;
        }
        buf.copy_within(start..len, 0);
        len -= start;
        start = 0;
        searched = len.saturating_sub(2);
        if len == buf.len() {
            // A record longer than the buffer.
            buf.resize(buf.len() * 2, 0);
        }
        eof = !fill(&mut r, &mut buf, &mut len)?;
    }
    Ok(Some(out))
}

/// Reads once into the free end of `buf`; `false` at the end of the file.
fn fill(r: &mut impl Read, buf: &mut [u8], len: &mut usize) -> std::io::Result<bool> {
    loop {
        match r.read(&mut buf[*len..]) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                *len += n;
                return Ok(true);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A foldhash seed drawn once per process (foldhash wants it `'static`).
fn record_seed() -> &'static SharedSeed {
    static SEED: std::sync::OnceLock<SharedSeed> = std::sync::OnceLock::new();
    SEED.get_or_init(|| SharedSeed::from_u64(std::hash::RandomState::new().hash_one(1u8)))
}

/// A record's text when it means the same parsed alone: UTF-8, every line after
/// the first indented (or empty), and no anchors or aliases that could tie it to
/// another record.
fn record_text(chunk: &[u8]) -> Option<&str> {
    if memchr::memchr2(b'&', b'*', chunk).is_some() {
        return None;
    }
    let text = std::str::from_utf8(chunk).ok()?;
    text.split('\n')
        .skip(1)
        .all(|l| l.starts_with(' ') || l.trim_end().is_empty())
        .then_some(text)
}

/// How far ahead of where the last match was a record's key is looked for
/// before the lookup map: enough for a few Services gone or changed in a row.
const LOOKAHEAD: usize = 4;

/// Finds, for each record key in file order, the entry of the last load made
/// from the same text. The file is written sorted, so the entry is almost always
/// the one after the last match: a look there, not a map of 10,000 keys per
/// reload (that was a millisecond of every reload). The map is built only when a
/// second record in a load is not found nearby (one new Service is one miss).
pub(crate) struct Matcher<'a, E> {
    keys: &'a [Option<E>],
    key_of: fn(&E) -> RecordKey,
    cursor: usize,
    misses: usize,
    index: Option<std::collections::HashMap<RecordKey, usize, foldhash::fast::RandomState>>,
}

impl<'a, E> Matcher<'a, E> {
    pub fn new(entries: &'a [Option<E>], key_of: fn(&E) -> RecordKey) -> Self {
        Matcher {
            keys: entries,
            key_of,
            cursor: 0,
            misses: 0,
            index: None,
        }
    }

    /// The index of the entry for `key` that `usable` accepts, never one before
    /// the last match (so none is matched twice).
    pub fn find(&mut self, key: &RecordKey, usable: impl Fn(&E) -> bool) -> Option<usize> {
        let ok = |j: usize| {
            self.keys
                .get(j)
                .and_then(Option::as_ref)
                .is_some_and(|e| (self.key_of)(e) == *key && usable(e))
        };
        let end = (self.cursor + LOOKAHEAD).min(self.keys.len());
        if let Some(j) = (self.cursor..end).find(|&j| ok(j)) {
            self.cursor = j + 1;
            return Some(j);
        }
        self.misses += 1;
        if self.misses < 2 {
            return None;
        }
        let key_of = self.key_of;
        let index = self.index.get_or_insert_with(|| {
            self.keys
                .iter()
                .enumerate()
                .filter_map(|(j, e)| e.as_ref().map(|e| (key_of(e), j)))
                .collect()
        });
        let j = *index.get(key)?;
        (j >= self.cursor && ok(j)).then(|| {
            self.cursor = j + 1;
            j
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The records of a whole text, split at once: what the block scan must
    /// agree with for any block size.
    fn split_whole(text: &[u8]) -> Vec<&[u8]> {
        let rest = text.strip_prefix(HEAD).unwrap();
        let mut out = Vec::new();
        let mut start = 0;
        for at in memchr::memmem::find_iter(rest, b"\n- ") {
            out.push(&rest[start..=at]);
            start = at + 1;
        }
        out.push(&rest[start..]);
        out
    }

    fn key(chunk: &[u8]) -> RecordKey {
        (
            chunk.len(),
            SeedableRandomState::with_seed(0, record_seed()).hash_one(chunk),
        )
    }

    /// A reader that hands out at most `n` bytes per read, as a pipe might.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn any_block_size_gives_the_records_of_the_whole_text() {
        let mut text = String::from("services:\n");
        for i in 0..40 {
            // Uneven lengths, so that blocks end at every place of a record,
            // including inside `\n- `.
            text.push_str(&format!(
                "- namespace: default\n  name: s{i}\n  note: '{}'\n",
                "x".repeat(i * 7 % 23)
            ));
        }
        text.push_str("- namespace: default\n  name: last\n  msg: |+\n    kept\n\n");
        let whole: Vec<RecordKey> = split_whole(text.as_bytes()).into_iter().map(key).collect();
        assert_eq!(whole.len(), 41);
        for block in [1, 2, 3, 5, 16, 17, 64, 333, BLOCK] {
            for trickle in [1, 7, usize::MAX] {
                let mut seen = Vec::new();
                let got = scan_records(
                    Trickle(text.as_bytes(), trickle),
                    block,
                    |k| {
                        seen.push(*k);
                        Some(seen.len() - 1)
                    },
                    |r| r,
                )
                .unwrap()
                .unwrap();
                assert_eq!(seen, whole, "block {block}, reads of {trickle}");
                let order: Vec<Scanned> = (0..41).map(Scanned::Known).collect();
                assert_eq!(got.order, order);
                assert!(got.parsed.is_empty());
            }
        }
    }

    #[test]
    fn only_unknown_records_are_parsed_in_file_order() {
        let text = "services:\n- namespace: a\n  name: x\n- namespace: b\n  name: y\n- namespace: c\n  name: z\n";
        let chunks = split_whole(text.as_bytes());
        let last = key(chunks[2]);
        let got = scan_records(text.as_bytes(), 5, |k| (*k == last).then_some(7), |r| r)
            .unwrap()
            .unwrap();
        assert_eq!(
            got.order,
            vec![
                Scanned::Fresh(Some(key(b"- namespace: a\n  name: x\n"))),
                Scanned::Fresh(Some(key(b"- namespace: b\n  name: y\n"))),
                Scanned::Known(7)
            ]
        );
        let names: Vec<&str> = got.parsed.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["x", "y"]);
    }

    #[test]
    fn records_past_one_batch_are_parsed_in_batches_and_in_file_order() {
        let mut text = String::from("services:\n");
        let n = 3000;
        for i in 0..n {
            text.push_str(&format!(
                "- namespace: ns{}\n  name: s{i}\n  loadBalancer: {{ingress: [{{ip: 10.0.{}.{}}}]}}\n",
                i % 7,
                i / 256,
                i % 256
            ));
        }
        assert!(text.len() > 3 * BATCH, "the test must cross batches");
        // Every third record known: the fresh ones around them are still in order.
        let mut k = 0;
        let mut calls = 0;
        let got = scan_records(
            text.as_bytes(),
            4096,
            |_| {
                k += 1;
                (k % 3 == 0).then_some(k)
            },
            |r| {
                calls += 1;
                r.name
            },
        )
        .unwrap()
        .unwrap();
        let fresh: Vec<String> = (0..n)
            .filter(|i| (i + 1) % 3 != 0)
            .map(|i| format!("s{i}"))
            .collect();
        assert_eq!(got.parsed, fresh);
        assert_eq!(calls, fresh.len());
        assert_eq!(got.order.len(), n);
        // A batch that does not parse makes the whole file "not ours".
        let broken = text.replacen("  name: s2000\n", "  name: [s2000\n", 1);
        assert!(
            scan_records(broken.as_bytes(), 4096, |_| None, |r| r)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_bad_layout_or_a_read_error_is_not_a_record_list() {
        for text in ["services: []\n", "servi", "services:\n  - a: 1\n", ""] {
            assert!(
                scan_records(text.as_bytes(), 4, |_| None, |r| r)
                    .unwrap()
                    .is_none(),
                "{text:?}"
            );
        }
        assert_eq!(
            scan_records(&b"services:\n"[..], 4, |_| None, |r| r)
                .unwrap()
                .map(|r| r.order.len()),
            Some(0)
        );
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk gone"))
            }
        }
        assert!(scan_records(Broken, 4, |_| None, |r| r).is_err());
    }

    #[test]
    fn the_matcher_follows_inserts_removals_and_edits() {
        let k = |n: usize| (n, n as u64);
        let entries: Vec<Option<RecordKey>> = (0..20).map(|n| Some(k(n))).collect();
        let find = |wanted: &[usize]| -> Vec<Option<usize>> {
            let mut m = Matcher::new(&entries, |e| *e);
            wanted.iter().map(|&n| m.find(&k(n), |_| true)).collect()
        };
        // The same file.
        let same: Vec<usize> = (0..20).collect();
        assert_eq!(find(&same), (0..20).map(Some).collect::<Vec<_>>());
        // A new record (100) in the middle: one miss, the rest in place.
        let mut ins = same.clone();
        ins.insert(10, 100);
        let got = find(&ins);
        assert_eq!(got[10], None);
        assert_eq!(got.iter().flatten().count(), 20);
        // Ten removed in a row, then two new ones: past the lookahead, the map.
        let cut: Vec<usize> = (0..5).chain([200, 201]).chain(15..20).collect();
        assert_eq!(
            find(&cut),
            vec![
                Some(0),
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                None,
                None,
                Some(15),
                Some(16),
                Some(17),
                Some(18),
                Some(19)
            ]
        );
        // A repeated key matches once; one before the cursor is not taken back.
        assert_eq!(find(&[3, 3, 3]), vec![Some(3), None, None]);
        assert_eq!(find(&[2, 1, 3]), vec![Some(2), None, Some(3)]);
        // An entry the caller cannot use (its Service is gone) is a miss.
        let mut m = Matcher::new(&entries, |e| *e);
        assert_eq!(m.find(&k(0), |e| e.0 != 0), None);
    }
}
