//! Bulk result CSV as downloads write it out (rows counted, the header row of later pages
//! dropped): the output and the count do not depend on how the bytes were cut into chunks, and
//! a later page adds exactly its rows after its header.
#![no_main]

use forcelink_client::fuzzing::result_csv;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    pages: Vec<Vec<u8>>,
    cuts: Vec<u16>,
}

/// `page` cut at the given offsets.
fn chunks<'a>(page: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| usize::from(*c) % (page.len() + 1)).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for a in at {
        out.push(&page[start..a]);
        start = a;
    }
    out.push(&page[start..]);
    out
}

fuzz_target!(|input: Input| {
    let pages: Vec<&[u8]> = input.pages.iter().take(4).map(Vec::as_slice).collect();
    let whole: Vec<Vec<&[u8]>> = pages.iter().map(|p| vec![*p]).collect();
    let cut: Vec<Vec<&[u8]>> = pages.iter().map(|p| chunks(p, &input.cuts)).collect();
    let (out, rows) = result_csv(&whole).expect("writing to memory");
    assert_eq!(result_csv(&cut).expect("writing to memory"), (out.clone(), rows), "chunking changed the output");
    // Page by page: each later page adds its output without its header row.
    if let [first, rest @ ..] = pages.as_slice() {
        let (mut expected, mut count) = result_csv(&[vec![*first]]).expect("writing to memory");
        for page in rest {
            let (alone, alone_rows) = result_csv(&[vec![*page]]).expect("writing to memory");
            let (with_header, header_rows) = result_csv(&[vec![*page], vec![]]).expect("writing to memory");
            assert_eq!((with_header.as_slice(), header_rows), (alone.as_slice(), alone_rows));
            let (pair, pair_rows) = result_csv(&[vec![b"h\n".as_slice()], vec![*page]]).expect("writing to memory");
            let body = &pair[2..];
            expected.extend_from_slice(body);
            count += pair_rows;
        }
        assert_eq!((out, rows), (expected, count));
    }
});
