// SPDX-License-Identifier: GPL-2.0

//! What the module counts and shows, written against the safe wrappers of [`crate::sys`]: no
//! `unsafe` and no C names here.

pub(crate) mod callbacks;
pub(crate) mod counters;
pub(crate) mod engine;
pub(crate) mod exited;
pub(crate) mod handlers;
pub(crate) mod histogram;
pub(crate) mod latency;
pub(crate) mod noise;
pub(crate) mod probes;
pub(crate) mod ratelimit;
pub(crate) mod report;
pub(crate) mod stacks;
pub(crate) mod tasks;
pub(crate) mod text;
pub(crate) mod tracker;
