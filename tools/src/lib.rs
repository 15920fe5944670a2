//! The host side of Flotilla: building images, booting emulators, parsing the console.
#![forbid(unsafe_code)]
