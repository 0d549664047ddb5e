// Lets the loader's build.rs depend on this crate (cargo then rebuilds the
// loader when the programs change); the programs are in the bin target.
#![no_std]
