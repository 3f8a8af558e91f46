//! The built-in CA: makes roots, cross-signs a new root with the old one, and signs
//! leaf certificates from CSRs. ECDSA P-256 (SHA-256) throughout, on ring, as Consul's
//! built-in provider defaults to.
//!
//! Pure functions of their inputs and the clock passed in: the leader calls them and puts
//! what they return into Raft; nothing here keeps state.

mod leaf;
mod root;

pub use leaf::{sign_leaf, LeafRequest};
pub use root::{generate_root, NewRoot};

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use ring::digest;

use super::structs::colon_hex;

/// What Consul's roots report as their key: `ec`, 256 bits.
pub const PRIVATE_KEY_TYPE: &str = "ec";
pub const PRIVATE_KEY_BITS: u32 = 256;

/// Why the CA could not make or sign a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    /// A CSR or key is malformed, badly signed or asks for what it may not have (the
    /// caller's fault: HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The CA's own material could not be used (a corrupt key in the state, a library
    /// failure).
    #[error("CA: {0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> CaError {
    CaError::Internal(e.to_string())
}

/// A fresh P-256 key pair.
pub fn generate_key() -> Result<KeyPair, CaError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(internal)
}

/// A key an operator gave (`PrivateKey`), which must be P-256 like every root's.
pub fn parse_key(pem: &str) -> Result<KeyPair, CaError> {
    let key = KeyPair::from_pem(pem)
        .map_err(|e| CaError::Invalid(format!("PrivateKey is not a PEM private key: {e}")))?;
    if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
        return Err(CaError::Invalid(
            "PrivateKey must be an EC P-256 key, as every root of Shoal's CA".into(),
        ));
    }
    Ok(key)
}

/// A certificate's ID as Consul computes it: the SHA-1 of its DER, colon-separated hex.
fn fingerprint(der: &[u8]) -> String {
    colon_hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

/// A random positive serial of `len` bytes (the top bit cleared, so DER needs no padding
/// and every reader sees a positive number).
fn random_serial(len: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 1;
    }
    bytes
}

#[cfg(test)]
pub(crate) mod tests;
