//! The one function of the C maths library the speaker calls, `pow` (tokio's
//! scheduler averages its poll times with it), defined here so that the
//! executable does not need `libm.so.6` at all: loading it for one function
//! kept 0.5 MiB of it resident (the kernel maps 64 KiB around every page
//! touched, and the loader reads its tables). `libm` is the Rust port of musl's.
// A C symbol the linker resolves tokio's call to.
#![allow(unsafe_code)]

/// C `pow(x, y)`.
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}
