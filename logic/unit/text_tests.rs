// SPDX-License-Identifier: GPL-2.0

//! `logic/text.rs`: CPU lists, fixed-buffer labels and the input parsers.

use crate::logic::text::{comm_str, cpu_list, line, parse_count, FixedText};
use core::fmt;

fn list(cpus: &[usize]) -> String {
    let mut s = String::new();
    cpu_list(&mut s, cpus.iter().copied()).unwrap();
    s
}

#[test]
fn cpu_lists_as_the_kernel_writes_them() {
    assert_eq!(list(&[]), "\n");
    assert_eq!(list(&[0]), "0\n");
    assert_eq!(list(&[0, 1, 2, 3]), "0-3\n");
    assert_eq!(list(&[0, 1, 2, 3, 6]), "0-3,6\n");
    assert_eq!(list(&[1, 3, 5]), "1,3,5\n");
    assert_eq!(list(&[0, 1, 4, 5, 6, 511]), "0-1,4-6,511\n");
}

/// Pads what `FixedText<N>` formats, as the tables pad their labels.
struct Padded<const N: usize>(&'static str);

impl<const N: usize> fmt::Display for Padded<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FixedText::<N>::padded(f, format_args!("{}:", self.0))
    }
}

#[test]
fn fixed_text_pads_as_a_whole() {
    assert_eq!(format!("{:<6}|", Padded::<16>("RES")), "RES:  |");
    assert_eq!(format!("{:>6}|", Padded::<16>("RES")), "  RES:|");
    // Exactly full fits; one byte more is an error, not a truncation.
    assert_eq!(format!("{}", Padded::<4>("RES")), "RES:");
    let mut s = String::new();
    assert!(fmt::write(&mut s, format_args!("{}", Padded::<3>("RES"))).is_err());
}

#[test]
fn line_strips_one_newline() {
    assert_eq!(line(b"1\n"), b"1");
    assert_eq!(line(b"1"), b"1");
    assert_eq!(line(b"1\n\n"), b"1\n");
    assert_eq!(line(b""), b"");
}

#[test]
fn counts_are_plain_decimals() {
    assert_eq!(parse_count(b"1"), Some(1));
    assert_eq!(parse_count(b"1024"), Some(1024));
    assert_eq!(parse_count(b"999999999"), Some(999_999_999));
    for bad in [
        &b""[..],
        b"0",
        b"01",
        b"+1",
        b"-1",
        b" 1",
        b"1 ",
        b"1\n",
        b"12a",
        b"0x10",
        b"1000000000",
    ] {
        assert_eq!(parse_count(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn comm_stops_at_the_first_nul() {
    let mut comm = [0u8; 16];
    comm[..4].copy_from_slice(b"bash");
    assert_eq!(comm_str(&comm), "bash");
    assert_eq!(comm_str(b"0123456789abcdef"), "0123456789abcdef");
    assert_eq!(comm_str(&[0xff, 0]), "?");
}
