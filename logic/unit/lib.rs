// SPDX-License-Identifier: GPL-2.0

//! The module's files that need no kernel (only `core`), compiled on the host as they are and tested
//! with `cargo test` in seconds: `make unit`. The module paths mirror the module's own
//! (`crate::logic::...`), so the files compile unchanged.

#![allow(dead_code)]

#[path = ".."]
pub(crate) mod logic {
    pub(crate) mod histogram;
    pub(crate) mod text;
}

#[cfg(test)]
mod histogram_tests;
#[cfg(test)]
mod text_tests;
